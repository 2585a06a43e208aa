"""Contracts (events, topics) and infrastructure plumbing shared by every service.

Holds no business rules: the policy's rule evaluation lives in the ``rules``
package, the rest in each service's ``domain`` package; ``shared.policy`` holds the
policy's schema and loader (the contract).
"""
