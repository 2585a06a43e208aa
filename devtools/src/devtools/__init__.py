"""Development tooling: the ``mfc`` command line, the whole system on one machine
(embedded PostgreSQL and broker, the services as processes, a development sign-in
provider and mail catcher), development tokens, and the generated docs (configuration,
AsyncAPI, OpenAPI). It imports the services, never the other way round: no service
imports it, and the service images do not install it.
"""
