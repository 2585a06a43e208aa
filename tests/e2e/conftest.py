"""The whole system on real infrastructure: the four services as their real
processes, on PostgreSQL and a Kafka-protocol broker from either backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.devstack import Infrastructure, ServiceSet, free_port
from tests.conftest import BACKENDS


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator["Stack"]:
    infra: Infrastructure = request.getfixturevalue(request.param)
    log_dir: Path = tmp_path_factory.mktemp(f"logs-{request.param}")
    services = ServiceSet(
        infra,
        log_dir=log_dir,
        state_dir=log_dir,
        ports={
            name: free_port() for name in ("intake", "notifier", "followup", "audit")
        },
    )
    services.start()
    try:
        services.wait_ready(timeout=90)
        yield Stack(request.param, infra, services)
    finally:
        services.stop()


class Stack:
    def __init__(
        self, backend: str, infra: Infrastructure, services: ServiceSet
    ) -> None:
        self.backend = backend
        self.infra = infra
        self.services = services

    def url(self, service: str) -> str:
        return self.services[service].url


from tests.browser import browser, page  # noqa: E402, F401  (the console's browser tests)
