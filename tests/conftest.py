"""Fixtures for every tier: builders for test data, and real infrastructure."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from devtools.devstack import Infrastructure
from tests import api  # noqa: F401  (it points the services at the test token issuer)
from tests.infra import container_infrastructure, embedded_infrastructure

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

BACKENDS = [
    b.strip()
    for b in os.environ.get("MFC_TEST_BACKENDS", "containers,embedded").split(",")
    if b.strip()
]
"""Infrastructure backends to run on; integration tests use the first."""


EVERY_BACKEND = frozenset({"test_walking_skeleton", "test_audit"})
"""End-to-end modules that run on every backend; the rest run on the first (the
containers, the design's testcontainers proof) unless ``MFC_TEST_EVERY_BACKEND=1``.
Running every end-to-end test twice doubled the tier's time for little: the services
are the same processes on either; what differs is the infrastructure, which these
modules (a report through to a verified trail) exercise whole."""


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Every test lives in exactly one tier, taken from its folder.
    for item in items:
        for tier in ("unit", "integration", "e2e", "faults"):
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))
    if os.environ.get("MFC_TEST_EVERY_BACKEND") == "1" or len(BACKENDS) < 2:
        return
    later = [item for item in items if _on_a_later_backend(item)]
    if later:
        config.hook.pytest_deselected(items=later)
        items[:] = [item for item in items if item not in set(later)]


def _on_a_later_backend(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("stack") if callspec is not None else None
    return (
        backend is not None
        and backend != BACKENDS[0]
        and item.path.stem not in EVERY_BACKEND
    )


def make_report(**overrides: Any) -> dict[str, Any]:
    """A valid report of a missing child; invented data only."""
    learned = datetime.now(UTC) - timedelta(minutes=30)
    report: dict[str, Any] = {
        "county_code": "NC-063",
        "case_id": f"case-{uuid4().hex[:12]}",
        "child": {
            "first_name": "Jordan",
            "last_name": "Testchild",
            "date_of_birth": "2012-05-17",
            "sex": "male",
            "race": "unknown",
            "height_cm": 150,
            "weight_kg": 41,
            "hair_color": "black",
            "eye_color": "brown",
            "photo_url": "https://photos.example.org/p/1.jpg",
        },
        "last_seen_at": (learned - timedelta(hours=3)).isoformat(),
        "discovered_at": (learned - timedelta(hours=1)).isoformat(),
        "agency_learned_at": learned.isoformat(),
        "circumstance": "runaway",
        "placement_type": "foster_home",
        "prior_episodes": 0,
        "endangerments": {
            "pregnant": False,
            "prescription_medications": [],
            "suicidal_tendencies": False,
            "sex_trafficking_vulnerability": "unknown",
            "other_health_or_risk_factors": [],
        },
        "caseworker": {"id": "cw-1", "name": "Casey Worker", "email": "cw@example.org"},
        "supervisor": {
            "id": "sv-1",
            "name": "Sam Supervisor",
            "email": "sv@example.org",
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key] = {**report[key], **value}
        else:
            report[key] = value
    return report


@pytest.fixture(scope="session")
def containers() -> Iterator[Infrastructure]:
    with container_infrastructure() as infra:
        yield infra


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    data_dir: Path = tmp_path_factory.mktemp("embedded")
    with embedded_infrastructure(data_dir) as infra:
        yield infra


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Infrastructure:
    """Real PostgreSQL and broker for integration tests (the first backend)."""
    backend: Infrastructure = request.getfixturevalue(BACKENDS[0])
    return backend


@pytest.fixture
def unique() -> str:
    """A fresh name for a topic, group or schema, so tests never see each other."""
    return f"t{uuid4().hex[:16]}"
