"""The whole system on real infrastructure: the four services as their real
processes, on PostgreSQL and a Kafka-protocol broker from either backend."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.devstack import DEV_COUNTIES, Infrastructure, ServiceSet, free_port
from tests.conftest import BACKENDS

QUIET_COUNTY = "NV-003"
"""A county served only for the silent-feed test (test_feeds.py): nothing else sends
for it, and it may keep quiet for 3 s only."""
QUIET_FOR = 3


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
        env={
            **os.environ,
            "INTAKE_COUNTIES": f"{DEV_COUNTIES},{QUIET_COUNTY}",
            "INTAKE_FEED_SILENCE_AFTER": json.dumps({QUIET_COUNTY: f"{QUIET_FOR}s"}),
            "INTAKE_FEED_CHECK_INTERVAL": "250ms",
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
