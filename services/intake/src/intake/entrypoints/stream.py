"""Intake's Kafka side: inbound CloudEvents from county systems on ``mfc.inbound.v1``.

They behave exactly like the HTTP calls. What cannot be applied (invalid data, an
unknown episode, an event that does not fit the episode) raises ``PermanentError`` and
goes to the dead-letter topic with the reason: never silently dropped. A repeated
event (same CloudEvent ``id``) is skipped by the reliable consumer before it gets here.
"""

from collections.abc import Mapping
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel

from intake import deadlines, handlers
from intake.adapters import postgres
from intake.domain.lifecycle import LATER_EVENTS, EventInvalidError, EventRefusedError
from intake.domain.model import ReportRejectedError
from intake.feeds import FeedWatch
from shared import topics
from shared.consumer import PermanentError, RawMessage
from shared.db import Conn
from shared.events import (
    CloudEvent,
    EpisodeReportedData,
    EventType,
    FeedHeartbeatData,
    InvalidEventError,
)
from shared.runtime import ServiceRuntime

_M = TypeVar("_M", bound=BaseModel)


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


ROUTING_KEYS = frozenset({"episode_id", "county_code", "case_id"})
"""Keys of a later event's data that say which episode it is about
(``resolve_episode``), not what happened."""


def _validated(event: CloudEvent, model: type[_M], ctx: handlers.IntakeContext) -> _M:
    """The event's data, or a refusal naming every field at fault: the schema's
    complaints (a field the contract does not have among them) and the
    deployment's rules together, as a 422 over HTTP would."""
    # Only a later event names its episode by these; in a report or a heartbeat
    # they are refused like any other unknown field, not dropped.
    later = model in LATER_EVENTS.values()
    routing = ROUTING_KEYS - model.model_fields.keys() if later else frozenset()
    data = {k: v for k, v in event.data.items() if k not in routing}
    try:
        return event.model_copy(update={"data": data}).data_as(model, strict=True)
    except InvalidEventError as exc:
        problems = ctx.rule_problems(model, event.data)
        if not problems:
            raise
        more = "; ".join(f"data.{'.'.join(p.loc)}: {p.msg}" for p in problems)
        raise InvalidEventError(f"{exc}; {more}") from exc


class ProducerNotAllowedError(PermanentError):
    """An inbound event its source may not send."""


def check_producer(
    sources: Mapping[str, frozenset[str]], source: str, county_code: str
) -> None:
    """Refuse an event its producer may not send: the Kafka counterpart of a bearer
    token's county scope."""
    counties = sources.get(source)
    if counties is None:
        raise ProducerNotAllowedError(
            f"source {source[:100]!r} is not a producer this deployment knows "
            "(see INTAKE_KAFKA_SOURCES)"
        )
    if county_code.upper() not in counties:
        raise ProducerNotAllowedError(
            f"source {source[:100]!r} may not send events for county {county_code}"
        )


def register(
    runtime: ServiceRuntime,
    ctx: handlers.IntakeContext,
    metrics: handlers.IntakeMetrics,
    feeds: FeedWatch,
    *,
    sources: Mapping[str, frozenset[str]],
) -> None:
    async def on_inbound_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        try:
            if event.type == EventType.FEED_HEARTBEAT:
                beat = _validated(event, FeedHeartbeatData, ctx)
                check_producer(sources, event.source, beat.county_code)
                if beat.county_code not in ctx.served_counties:
                    raise PermanentError(
                        f"county {beat.county_code} is not served by this deployment"
                    )
                feeds.heard(beat.county_code, "kafka")
                return
            if event.type == EventType.EPISODE_REPORTED:
                report = _validated(event, EpisodeReportedData, ctx)
                check_producer(sources, event.source, report.county_code)
                await handlers.report_episode(conn, report, ctx=ctx, metrics=metrics)
                feeds.heard(report.county_code, "kafka")
                return
            model = LATER_EVENTS.get(event.type)
            if model is None:
                raise PermanentError(
                    f"event type {event.type!r} is not accepted on {topics.INBOUND}"
                )
            data = _validated(event, model, ctx)
            episode_id = await resolve_episode(conn, event)
            episode = await postgres.get_episode(conn, episode_id)
            if episode is not None:  # else record_event says there is none
                check_producer(sources, event.source, episode.county_code)
            outcome = await handlers.record_event(
                conn, episode_id, event.type, data, ctx=ctx, metrics=metrics
            )
            feeds.heard(outcome.episode.county_code, "kafka")
        except InvalidEventError:
            metrics.rejected.labels("invalid_event").inc()
            raise
        except ProducerNotAllowedError:
            metrics.rejected.labels("producer_not_allowed").inc()
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
    runtime.subscribe_batch(
        "intake-deadlines",
        deadlines.project,
        topics.OBLIGATIONS,
        topics.PROMPTS,
        group_suffix="deadlines",
    )
