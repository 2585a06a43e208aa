"""Builders for followup's unit tests: canonical episode events, the handlers'
dependencies on a manual clock, and the shipped policy."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from prometheus_client import CollectorRegistry

from followup.handlers import Deps, FollowupMetrics
from shared.alerting import AlertingContext
from shared.alerts import Route
from shared.clock import ManualClock
from shared.events import CloudEvent, EventType
from shared.policy import default_policy_path, load_policy
from tests.conftest import make_report

POLICY = load_policy(default_policy_path())
START = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
COUNTY = "WA-033"
ITEM = "endangerments.sex_trafficking_vulnerability"
URL = "https://console.example.org/episodes/{episode_id}"


def make_deps(clock: ManualClock) -> Deps:
    ctx = AlertingContext(
        policy=POLICY,
        clock=clock,
        source="test/followup",
        episode_url_template=URL,
        alert_url_template="https://console.example.org/alerts/{alert_id}",
        route=Route(webhook_url=None, email_enabled=False),
    )
    return Deps(ctx, FollowupMetrics(CollectorRegistry()))


def event(type_: EventType, episode_id: UUID, **data: Any) -> CloudEvent:
    return CloudEvent.new(
        type=type_,
        source="test/intake",
        subject=str(episode_id),
        data={"episode_id": str(episode_id), "county_code": COUNTY, **data},
        time=START,
    )


def reported(episode_id: UUID, *missing: str) -> CloudEvent:
    report = make_report(county_code=COUNTY)
    return event(EventType.EPISODE_REPORTED, episode_id, **report, completeness=missing)


def updated(episode_id: UUID, *missing: str) -> CloudEvent:
    return event(
        EventType.EPISODE_UPDATED, episode_id, note="seen", completeness=missing
    )


def located(episode_id: UUID) -> CloudEvent:
    return event(
        EventType.EPISODE_LOCATED,
        episode_id,
        located_at=START.isoformat(),
        location_type="friend's home",
    )


def screened(episode_id: UUID) -> CloudEvent:
    return event(
        EventType.SCREENING_COMPLETED,
        episode_id,
        completed_at=START.isoformat(),
        trafficking_indicated=False,
        screened_by="cw-1",
    )


def closed(episode_id: UUID) -> CloudEvent:
    return event(
        EventType.EPISODE_CLOSED,
        episode_id,
        closed_at=START.isoformat(),
        reason="home, debriefed",
        closed_by="sv-1",
    )


def new_id() -> UUID:
    return uuid4()
