"""Intake's Kafka side: inbound CloudEvents from county systems on ``mfc.inbound.v1``.

They behave exactly like the HTTP calls. What cannot be applied (invalid data, an
unknown episode, an event that does not fit the episode) raises ``PermanentError`` and
goes to the dead-letter topic with the reason: never silently dropped. A repeated
event (same CloudEvent ``id``) is skipped by the reliable consumer before it gets here.
"""

from uuid import UUID

from intake import deadlines, handlers
from intake.adapters import postgres
from intake.domain.lifecycle import LATER_EVENTS, EventInvalidError, EventRefusedError
from intake.domain.model import ReportRejectedError
from shared import topics
from shared.consumer import PermanentError, RawMessage
from shared.db import Conn
from shared.events import CloudEvent, EpisodeReportedData, EventType, InvalidEventError
from shared.runtime import ServiceRuntime


async def resolve_episode(conn: Conn, event: CloudEvent) -> UUID:
    """Which episode a later event is about: ``data.episode_id``, a UUID ``subject``,
    or the open episode of ``data.county_code`` + ``data.case_id``."""
    for candidate in (event.data.get("episode_id"), event.subject):
        if isinstance(candidate, str):
            try:
                return UUID(candidate)
            except ValueError:
                pass
    county, case_id = event.data.get("county_code"), event.data.get("case_id")
    if isinstance(county, str) and isinstance(case_id, str):
        found = await postgres.open_episode_for_case(
            conn, county_code=county.upper(), case_id=case_id
        )
        if found is not None:
            return found[0].id
    raise PermanentError(
        "cannot tell which episode this event is about: give data.episode_id, an "
        "episode id as subject, or data.county_code and data.case_id of an open episode"
    )


def register(
    runtime: ServiceRuntime,
    ctx: handlers.IntakeContext,
    metrics: handlers.IntakeMetrics,
) -> None:
    async def on_inbound_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        try:
            if event.type == EventType.EPISODE_REPORTED:
                report = event.data_as(EpisodeReportedData)
                await handlers.report_episode(conn, report, ctx=ctx, metrics=metrics)
                return
            model = LATER_EVENTS.get(event.type)
            if model is None:
                raise PermanentError(
                    f"event type {event.type!r} is not accepted on {topics.INBOUND}"
                )
            data = event.data_as(model)
            episode_id = await resolve_episode(conn, event)
            await handlers.record_event(
                conn, episode_id, event.type, data, ctx=ctx, metrics=metrics
            )
        except InvalidEventError:
            metrics.rejected.labels("invalid_event").inc()
            raise
        except (
            ReportRejectedError,
            EventInvalidError,
            EventRefusedError,
            handlers.EpisodeConflictError,
            handlers.EpisodeNotFoundError,
        ) as exc:
            raise PermanentError(str(exc)) from exc

    runtime.subscribe("intake-inbound", on_inbound_event, topics.INBOUND)
    runtime.subscribe(
        "intake-deadlines",
        deadlines.project,
        topics.OBLIGATIONS,
        topics.PROMPTS,
        group_suffix="deadlines",
    )
