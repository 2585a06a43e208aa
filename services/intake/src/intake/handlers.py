"""Intake's service layer: one function per command, each inside the caller's
transaction, changing state and writing the canonical event to the outbox together.
A report needs none: a new one is written by a single statement."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from intake.adapters import postgres
from intake.domain.lifecycle import (
    EpisodeState,
    EventInvalidError,
    EventRefusedError,
    apply_event,
)
from intake.domain.model import (
    Episode,
    FieldProblem,
    ReportRejectedError,
    check_report,
    completeness,
    fact_digest,
    missing_items,
    report_digest,
    rule_problems,
)
from shared import topics
from shared.clock import Clock
from shared.db import Conn
from shared.events import (
    CANONICAL_DATA,
    CloudEvent,
    EpisodeReported,
    EpisodeReportedData,
    EventType,
    NotificationRecordedData,
)
from shared.outbox import enqueue
from shared.policy import Policy

logger = logging.getLogger(__name__)


class EpisodeConflictError(Exception):
    """A different report for a case that already has an open episode (409)."""

    def __init__(self, episode_id: UUID) -> None:
        super().__init__(f"case already has open episode {episode_id}")
        self.episode_id = episode_id


class EpisodeNotFoundError(Exception):
    """No such episode (404)."""


class IdempotencyKeyReusedError(Exception):
    """An Idempotency-Key sent again with a different request (422)."""


@dataclass(frozen=True)
class IntakeContext:
    clock: Clock
    served_counties: frozenset[str]
    skew: timedelta
    source: str
    policy: Policy

    def rule_problems(self, model: type[BaseModel], raw: Any) -> list[FieldProblem]:
        """The deployment's rules over a body (see ``model.rule_problems``), now."""
        return rule_problems(
            model,
            raw,
            now=self.clock.now(),
            skew=self.skew,
            served_counties=self.served_counties,
        )


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "mfc_intake_reports_accepted_total",
            "New episodes opened",
            registry=registry,
        )
        self.duplicates = Counter(
            "mfc_intake_duplicates_total",
            "Requests that repeated what was already recorded",
            ["type"],
            registry=registry,
        )
        self.rejected = Counter(
            "mfc_intake_rejected_total",
            "Reports and events refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.recorded = Counter(
            "mfc_intake_events_recorded_total",
            "Events after the report applied to episodes",
            ["type"],
            registry=registry,
        )


@dataclass(frozen=True)
class Outcome:
    episode: Episode
    created: bool


async def report_episode(
    conn: Conn,
    report: EpisodeReportedData,
    *,
    ctx: IntakeContext,
    metrics: IntakeMetrics,
    idempotency_key: str | None = None,
) -> Outcome:
    """Open an episode for a report, or return the open one it repeats.

    The same report twice (or twenty times at once) gives one episode and one
    canonical event: concurrent inserts meet at the unique index of open episodes
    per county case.

    It needs no transaction of the caller's: a new report (episode, timeline entry,
    outbox row and Idempotency-Key) is written by one statement, whole or not at all,
    and what else it reads or writes (a repeat) stands on its own.

    Raises:
        ReportRejectedError: a field is at fault (422).
        EpisodeConflictError: a different report for a case with an open episode (409).
        IdempotencyKeyReusedError: the key came before with another request (422).
    """
    now, digest = ctx.clock.now(), report_digest(report)
    try:
        check_report(
            report, now=now, skew=ctx.skew, served_counties=ctx.served_counties
        )
    except ReportRejectedError as exc:
        # A retried request is answered as it was first, whatever the rules say now.
        replay = await _replay(conn, idempotency_key, digest, metrics, "reported")
        if replay is not None:
            return replay
        _count_problems(metrics, exc.problems)
        raise
    episode_id, missing = uuid4(), completeness(report)
    canonical = canonical_report(
        report, episode_id=episode_id, completeness=missing, ctx=ctx
    )
    reported = _event(episode_id, (EventType.EPISODE_REPORTED, canonical), ctx, now)
    try:
        created = await postgres.open_episode(
            conn,
            episode_id,
            report,
            reported,
            topic=topics.EPISODES,
            digest=digest,
            completeness=missing,
            idempotency_key=idempotency_key,
            now=now,
        )
    except postgres.IdempotencyKeyTakenError:
        # A concurrent request stored the key first; nothing of this one was
        # written. Answered as if it had come after (a caller's transaction, where
        # there is one, is aborted: the error goes on).
        if conn.is_in_transaction():
            raise
        replay = await _replay(conn, idempotency_key, digest, metrics, "reported")
        assert replay is not None
        return replay
    if isinstance(created, postgres.StoredKey):
        return await _replayed(conn, created, digest, metrics, "reported")
    if created is None:
        episode = await _open_episode_it_repeats(conn, report, digest, metrics)
        await _remember(conn, idempotency_key, digest, episode.id, now)
        return Outcome(episode, created=False)
    metrics.accepted.inc()
    logger.info("episode %s opened for %s", episode_id, report.county_code)
    return Outcome(created, created=True)


def canonical_report(
    report: EpisodeReportedData,
    *,
    episode_id: UUID,
    completeness: list[str],
    ctx: IntakeContext,
) -> EpisodeReported:
    """The canonical event's data for a report: the report as validated, with what
    intake adds. Not validated again (about 70 µs of CPU a report): the report was,
    on its way in, and what is added is intake's own."""
    return EpisodeReported.model_construct(
        **dict(report),
        episode_id=episode_id,
        completeness=completeness,
        policy_digest=ctx.policy.digest,
    )


async def _open_episode_it_repeats(
    conn: Conn, report: EpisodeReportedData, digest: str, metrics: IntakeMetrics
) -> Episode:
    """The case's open episode, when the report repeats it exactly.

    Raises:
        EpisodeConflictError: the open episode came from a different report.
    """
    existing = await postgres.open_episode_for_case(
        conn, county_code=report.county_code, case_id=report.case_id
    )
    if existing is None:  # closed between our insert and this read; caller retries
        raise RuntimeError("open episode vanished during dedupe")
    episode, existing_digest = existing
    if existing_digest != digest:
        metrics.rejected.labels("open_episode").inc()
        raise EpisodeConflictError(episode.id)
    metrics.duplicates.labels("reported").inc()
    return episode


async def record_event(
    conn: Conn,
    episode_id: UUID,
    event_type: str,
    data: Any,
    *,
    ctx: IntakeContext,
    metrics: IntakeMetrics,
    idempotency_key: str | None = None,
) -> Outcome:
    """Apply an event that follows the report (update, notification, located,
    screening, close) to its episode and publish the canonical event.

    The same fact sent again (same type and data) is recorded once.

    Raises:
        EpisodeNotFoundError: no such episode (404).
        EventRefusedError: the event does not fit the episode's state (409).
        EventInvalidError: a field is at fault (422).
        IdempotencyKeyReusedError: the key came before with another request (422).
    """
    now, digest = ctx.clock.now(), fact_digest(event_type, data)
    label = event_type.rsplit(".", 1)[-1]
    replay = await _replay(conn, idempotency_key, digest, metrics, label)
    if replay is not None:
        return replay
    problems = ctx.rule_problems(type(data), data.model_dump())
    if problems:
        _count_problems(metrics, problems)
        raise EventInvalidError(problems)
    episode, state = await _lock_episode(conn, episode_id, metrics)
    if await postgres.has_fact(
        conn, episode_id=episode_id, type_=event_type, digest=digest
    ):
        metrics.duplicates.labels(label).inc()
        await _remember(conn, idempotency_key, digest, episode_id, now)
        return Outcome(episode, created=False)
    new_state = _transition(state, event_type, data, ctx=ctx, metrics=metrics, now=now)
    await postgres.save_episode_state(conn, episode_id, new_state, now=now)
    extra = await _derived_fields(conn, event_type, data, episode_id, new_state)
    canonical = (event_type, _canonical(event_type, data, episode, extra))
    await _record(conn, episode_id, canonical, digest, ctx, now)
    await _remember(conn, idempotency_key, digest, episode_id, now)
    updated = await postgres.get_episode(conn, episode_id)
    assert updated is not None
    metrics.recorded.labels(label).inc()
    logger.info("%s recorded", event_type)
    return Outcome(updated, created=True)


async def _lock_episode(
    conn: Conn, episode_id: UUID, metrics: IntakeMetrics
) -> tuple[Episode, EpisodeState]:
    loaded = await postgres.lock_episode_state(conn, episode_id)
    if loaded is None:
        metrics.rejected.labels("unknown_episode").inc()
        raise EpisodeNotFoundError(f"no episode {episode_id}")
    return loaded


def _transition(
    state: EpisodeState,
    event_type: str,
    data: BaseModel,
    *,
    ctx: IntakeContext,
    metrics: IntakeMetrics,
    now: datetime,
) -> EpisodeState:
    """The episode's state after the event (the lifecycle's rules), refusals counted."""
    label = event_type.rsplit(".", 1)[-1]
    try:
        return apply_event(state, event_type, data, now=now, skew=ctx.skew)
    except EventRefusedError:
        metrics.rejected.labels(f"{label}_out_of_order").inc()
        raise
    except EventInvalidError as exc:
        _count_problems(metrics, exc.problems)
        raise


async def _derived_fields(
    conn: Conn, event_type: str, data: BaseModel, episode_id: UUID, state: EpisodeState
) -> dict[str, Any]:
    """What intake adds to the canonical event of this type: the report items still
    missing (``completeness``), and for a notice those it went without."""
    model = CANONICAL_DATA[event_type]
    extra: dict[str, Any] = {}
    if "completeness" in model.model_fields:
        extra["completeness"] = state.completeness
    if isinstance(data, NotificationRecordedData):
        recorded = await postgres.has_law_enforcement_reference(conn, episode_id)
        extra["missing_items"] = missing_items(
            state.completeness, data, law_enforcement_reference_recorded=recorded
        )
    return extra


def _canonical(
    event_type: str, data: BaseModel, episode: Episode, extra: dict[str, Any]
) -> BaseModel:
    """The canonical event's data: what was sent, with the episode's id and county
    and what intake derives (``_derived_fields``)."""
    model = CANONICAL_DATA[event_type]
    return model(
        **data.model_dump(),
        episode_id=episode.id,
        county_code=episode.county_code,
        **extra,
    )


def _count_problems(metrics: IntakeMetrics, problems: list[FieldProblem]) -> None:
    for problem in problems:
        metrics.rejected.labels(problem.loc[0]).inc()


async def _record(
    conn: Conn,
    episode_id: UUID,
    canonical: tuple[str, BaseModel],
    digest: str,
    ctx: IntakeContext,
    now: datetime,
) -> None:
    """The canonical event on the episode's timeline and in the outbox, together."""
    event = _event(episode_id, canonical, ctx, now)
    await postgres.append_timeline(
        conn,
        episode_id=episode_id,
        event_id=event.id,
        type_=event.type,
        occurred_at=now,
        data=event.data,
        digest=digest,
    )
    await enqueue(conn, topic=topics.EPISODES, event=event)


def _event(
    episode_id: UUID,
    canonical: tuple[str, BaseModel],
    ctx: IntakeContext,
    now: datetime,
) -> CloudEvent:
    event_type, data = canonical
    return CloudEvent.new(
        type=event_type,
        source=ctx.source,
        subject=str(episode_id),
        data=data.model_dump(mode="json"),
        time=now,
    )


async def _replay(
    conn: Conn, key: str | None, digest: str, metrics: IntakeMetrics, label: str
) -> Outcome | None:
    """What a request with this Idempotency-Key answered before (None: new)."""
    if key is None:
        return None
    stored = await postgres.idempotency_key(conn, key)
    if stored is None:
        return None
    return await _replayed(conn, stored, digest, metrics, label)


async def _replayed(
    conn: Conn,
    stored: postgres.StoredKey,
    digest: str,
    metrics: IntakeMetrics,
    label: str,
) -> Outcome:
    """The answer to a request whose Idempotency-Key came before.

    Raises:
        IdempotencyKeyReusedError: it came with another request (422).
    """
    if stored.request_digest != digest:
        metrics.rejected.labels("idempotency_key_reused").inc()
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used before with a different request"
        )
    episode = await postgres.get_episode(conn, stored.episode_id)
    assert episode is not None
    metrics.duplicates.labels(label).inc()
    return Outcome(episode, created=False)


async def _remember(
    conn: Conn, key: str | None, digest: str, episode_id: UUID, now: datetime
) -> None:
    if key is None:
        return
    stored = await postgres.remember_idempotency_key(
        conn, key=key, request_digest=digest, episode_id=episode_id, now=now
    )
    if (
        stored.request_digest != digest
    ):  # a concurrent request with the same key won the race
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used before with a different request"
        )


__all__ = [
    "EpisodeConflictError",
    "EpisodeNotFoundError",
    "EventInvalidError",
    "EventRefusedError",
    "FieldProblem",
    "IdempotencyKeyReusedError",
    "IntakeContext",
    "IntakeMetrics",
    "Outcome",
    "record_event",
    "report_episode",
]
