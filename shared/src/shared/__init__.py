"""Contracts (events, topics) and infrastructure plumbing shared by every service.

Holds no business rules: those live in each service's ``domain`` package.
"""
