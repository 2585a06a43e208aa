"""Intake's service layer: one function per command, each in one transaction that
changes state and writes the canonical event to the outbox together."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from prometheus_client import CollectorRegistry, Counter

from intake.adapters import postgres
from intake.domain.model import (
    Episode,
    ReportRejectedError,
    check_report,
    completeness,
    report_digest,
)
from shared import topics
from shared.clock import Clock
from shared.db import Conn
from shared.events import CloudEvent, EpisodeReported, EpisodeReportedData, EventType
from shared.outbox import enqueue

logger = logging.getLogger(__name__)


class EpisodeConflictError(Exception):
    """A different report for a case that already has an open episode."""

    def __init__(self, episode_id: UUID) -> None:
        super().__init__(f"case already has open episode {episode_id}")
        self.episode_id = episode_id


@dataclass(frozen=True)
class IntakeContext:
    clock: Clock
    served_counties: frozenset[str]
    skew: timedelta
    source: str


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "mfc_intake_reports_accepted_total",
            "New episodes opened",
            registry=registry,
        )
        self.duplicates = Counter(
            "mfc_intake_reports_duplicate_total",
            "Reports that repeated an open episode",
            registry=registry,
        )
        self.rejected = Counter(
            "mfc_intake_reports_rejected_total",
            "Reports refused",
            ["reason"],
            registry=registry,
        )


@dataclass(frozen=True)
class ReportOutcome:
    episode: Episode
    created: bool


async def report_episode(
    conn: Conn,
    report: EpisodeReportedData,
    *,
    ctx: IntakeContext,
    metrics: IntakeMetrics,
) -> ReportOutcome:
    """Open an episode for a report, or return the open one it repeats.

    Runs in the caller's transaction. The same report twice (or twenty times at
    once) gives one episode and one canonical event; concurrent inserts meet at the
    unique index of open episodes per county case.

    Raises:
        ReportRejectedError: a field is at fault (422).
        EpisodeConflictError: a different report for a case with an open episode (409).
    """
    now = ctx.clock.now()
    try:
        check_report(
            report, now=now, skew=ctx.skew, served_counties=ctx.served_counties
        )
    except ReportRejectedError as exc:
        for problem in exc.problems:
            metrics.rejected.labels(problem.loc[0]).inc()
        raise
    digest = report_digest(report)
    missing = completeness(report)
    episode_id = uuid4()
    inserted = await postgres.insert_episode_if_none_open(
        conn,
        episode_id=episode_id,
        county_code=report.county_code,
        case_id=report.case_id,
        report=report.model_dump(mode="json"),
        digest=digest,
        completeness=missing,
        agency_learned_at=report.agency_learned_at,
        now=now,
    )
    if not inserted:
        existing = await postgres.open_episode_for_case(
            conn, county_code=report.county_code, case_id=report.case_id
        )
        if existing is None:  # closed between our insert and this read: try again
            raise RuntimeError("open episode vanished during dedupe")
        episode, existing_digest = existing
        if existing_digest != digest:
            metrics.rejected.labels("open_episode").inc()
            raise EpisodeConflictError(episode.id)
        metrics.duplicates.inc()
        return ReportOutcome(episode, created=False)

    canonical = EpisodeReported(
        **report.model_dump(), episode_id=episode_id, completeness=missing
    )
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source=ctx.source,
        subject=str(episode_id),
        data=canonical,
        time=now,
    )
    await postgres.append_timeline(
        conn,
        episode_id=episode_id,
        event_id=event.id,
        type_=event.type,
        occurred_at=now,
        data=event.data,
    )
    await enqueue(conn, topic=topics.EPISODES, event=event)
    created = await postgres.get_episode(conn, episode_id)
    assert created is not None
    metrics.accepted.inc()
    logger.info("episode %s opened for %s", episode_id, report.county_code)
    return ReportOutcome(created, created=True)
