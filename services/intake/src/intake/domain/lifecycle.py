"""The episode lifecycle: reported → updated* → located → screening → closed.

Pure rules: given an episode's state, an event type, its data and the time, decide
whether the event applies and what the episode becomes. Events that do not fit (a
screening before the child is located, anything after closing) are refused with the
reason, never applied.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from intake.domain.model import EpisodeStatus, FieldProblem, completeness
from shared.events import (
    MAX_EXTENSIONS,
    EpisodeClosedData,
    EpisodeLocatedData,
    EpisodeReportedData,
    EpisodeUpdatedData,
    EventType,
    NotificationRecordedData,
    ScreeningCompletedData,
)


class EventRefusedError(Exception):
    """The event is well-formed but does not fit the episode (HTTP 409)."""


class EventInvalidError(Exception):
    """A field of the event is at fault (HTTP 422)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p.loc)}: {p.msg}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class EpisodeState:
    status: EpisodeStatus
    report: EpisodeReportedData
    located_at: datetime | None = None
    screened_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def completeness(self) -> list[str]:
        return completeness(self.report)


LATER_EVENTS: dict[str, type[Any]] = {
    EventType.EPISODE_UPDATED: EpisodeUpdatedData,
    EventType.NOTIFICATION_RECORDED: NotificationRecordedData,
    EventType.EPISODE_LOCATED: EpisodeLocatedData,
    EventType.SCREENING_COMPLETED: ScreeningCompletedData,
    EventType.EPISODE_CLOSED: EpisodeClosedData,
}
"""The events that follow a report, with their data models."""


def apply_event(
    state: EpisodeState,
    event_type: str,
    data: Any,
    *,
    now: datetime,
    skew: timedelta,
) -> EpisodeState:
    """The episode after ``data`` of ``event_type`` happened.

    Raises:
        EventRefusedError: the event does not fit the episode's state.
        EventInvalidError: a time in the event is impossible.
    """
    if state.status is EpisodeStatus.CLOSED:
        raise EventRefusedError("the episode is closed; nothing more can be recorded")
    latest = now + skew
    if isinstance(data, EpisodeUpdatedData):
        return replace(state, report=_merge_update(state.report, data))
    if isinstance(data, NotificationRecordedData):
        _not_future("notified_at", data.notified_at, latest)
        _not_before(
            "notified_at", data.notified_at, "last_seen_at", state.report.last_seen_at
        )
        return state
    if isinstance(data, EpisodeLocatedData):
        if state.status is EpisodeStatus.LOCATED:
            raise EventRefusedError(
                f"the child was already located at {state.located_at:%Y-%m-%dT%H:%M:%SZ}"
            )
        _not_future("located_at", data.located_at, latest)
        _not_before(
            "located_at", data.located_at, "last_seen_at", state.report.last_seen_at
        )
        return replace(state, status=EpisodeStatus.LOCATED, located_at=data.located_at)
    if isinstance(data, ScreeningCompletedData):
        if state.located_at is None:
            raise EventRefusedError(
                "a screening is recorded after the child is located"
            )
        if state.screened_at is not None:
            raise EventRefusedError("the screening of this episode is already recorded")
        _not_future("completed_at", data.completed_at, latest)
        _not_before("completed_at", data.completed_at, "located_at", state.located_at)
        return replace(state, screened_at=data.completed_at)
    if isinstance(data, EpisodeClosedData):
        _not_future("closed_at", data.closed_at, latest)
        _not_before(
            "closed_at",
            data.closed_at,
            "agency_learned_at",
            state.report.agency_learned_at,
        )
        return replace(state, status=EpisodeStatus.CLOSED, closed_at=data.closed_at)
    raise EventRefusedError(f"event type {event_type!r} does not apply to an episode")


def _not_future(name: str, value: datetime, latest: datetime) -> None:
    if value > latest:
        raise EventInvalidError([FieldProblem((name,), "must not be in the future")])


def _not_before(name: str, value: datetime, other: str, other_value: datetime) -> None:
    if value < other_value:
        raise EventInvalidError(
            [FieldProblem((name,), f"must not be before the episode's {other}")]
        )


def _merge_update(
    report: EpisodeReportedData, update: EpisodeUpdatedData
) -> EpisodeReportedData:
    """The report with the update's non-empty fields applied (identity stays fixed)."""
    merged = report.model_dump()
    if update.child is not None:
        merged["child"].update(update.child.model_dump(exclude_none=True))
    if update.endangerments is not None:
        merged["endangerments"].update(
            update.endangerments.model_dump(exclude_none=True)
        )
    if update.last_known_location is not None:
        merged["last_known_location"] = update.last_known_location
    if update.extensions:
        merged["extensions"] = {**(merged["extensions"] or {}), **update.extensions}
        if len(merged["extensions"]) > MAX_EXTENSIONS:
            raise EventInvalidError(
                [
                    FieldProblem(
                        ("extensions",),
                        f"with the report's, more than {MAX_EXTENSIONS} keys: "
                        "send fewer new keys, or reuse the report's",
                    )
                ]
            )
    return EpisodeReportedData.model_validate(merged)
