"""Builders for the notifier's unit tests: canonical episode events at fixed times,
the handlers' dependencies on a manual clock, and the shipped policy."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from notifier.handlers import Deps
from shared.clock import ManualClock
from shared.events import CloudEvent, EventType
from shared.policy import default_policy_path, load_policy
from tests.conftest import make_report

POLICY = load_policy(default_policy_path())
START = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
"""When the agency learned of the episode, and when the notifier sees the report."""
H = timedelta(hours=1)


def make_deps(clock: ManualClock) -> Deps:
    return Deps.detached(
        POLICY,
        clock,
        source="test/notifier",
        episode_url_template="https://console.example.org/episodes/{episode_id}",
        alert_url_template="https://console.example.org/alerts/{alert_id}",
    )


def event(
    type_: EventType, episode: tuple[UUID, str], *, at: datetime = START, **data: Any
) -> CloudEvent:
    """A canonical event of ``episode`` (its id and county)."""
    episode_id, county = episode
    return CloudEvent.new(
        type=type_,
        source="test/intake",
        subject=str(episode_id),
        data={"episode_id": str(episode_id), "county_code": county, **data},
        time=at,
    )


def reported(episode: tuple[UUID, str], **overrides: Any) -> CloudEvent:
    report = make_report(
        county_code=episode[1],
        last_seen_at=(START - 3 * H).isoformat(),
        discovered_at=(START - H).isoformat(),
        agency_learned_at=START.isoformat(),
        **overrides,
    )
    return event(EventType.EPISODE_REPORTED, episode, **report, completeness=[])


def updated(episode: tuple[UUID, str], at: datetime, **data: Any) -> CloudEvent:
    return event(EventType.EPISODE_UPDATED, episode, at=at, **data)


def located(episode: tuple[UUID, str], at: datetime) -> CloudEvent:
    return event(
        EventType.EPISODE_LOCATED,
        episode,
        at=at,
        located_at=at.isoformat(),
        location_type="friend's home",
    )


def screened(
    episode: tuple[UUID, str], at: datetime, *, trafficking: bool
) -> CloudEvent:
    return event(
        EventType.SCREENING_COMPLETED,
        episode,
        at=at,
        completed_at=at.isoformat(),
        trafficking_indicated=trafficking,
        screened_by="cw-1",
    )


def notified(
    episode: tuple[UUID, str], at: datetime, recipient: str, **data: Any
) -> CloudEvent:
    return event(
        EventType.NOTIFICATION_RECORDED,
        episode,
        at=at,
        recipient=recipient,
        method="online",
        notified_at=at.isoformat(),
        notified_by="cw-1",
        **data,
    )


def closed(episode: tuple[UUID, str], at: datetime) -> CloudEvent:
    return event(
        EventType.EPISODE_CLOSED,
        episode,
        at=at,
        closed_at=at.isoformat(),
        reason="home, debriefed",
        closed_by="sv-1",
    )
