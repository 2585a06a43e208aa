"""Intake's Kafka side: inbound CloudEvents from county systems on ``mfc.inbound.v1``.

They behave exactly like the HTTP calls; what cannot be applied goes to the
dead-letter topic with the reason (``PermanentError``), never silently dropped.
"""

from intake import handlers
from intake.domain.model import ReportRejectedError
from shared import topics
from shared.consumer import PermanentError, RawMessage
from shared.db import Conn
from shared.events import CloudEvent, EpisodeReportedData, EventType
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime,
    ctx: handlers.IntakeContext,
    metrics: handlers.IntakeMetrics,
) -> None:
    async def on_inbound_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        if event.type != EventType.EPISODE_REPORTED:
            raise PermanentError(
                f"event type {event.type!r} is not accepted on {topics.INBOUND} by this version"
            )
        report = event.data_as(EpisodeReportedData)
        try:
            await handlers.report_episode(conn, report, ctx=ctx, metrics=metrics)
        except (ReportRejectedError, handlers.EpisodeConflictError) as exc:
            raise PermanentError(str(exc)) from exc

    runtime.subscribe("intake-inbound", on_inbound_event, topics.INBOUND)
