"""Followup's Kafka side: canonical episode events start and end prompt series,
in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction; the notifier's
on-call covers are kept for the escalations."""

from followup import handlers
from followup.ports import PortFactory
from shared import topics
from shared.consumer import RawMessage, each
from shared.db import Conn
from shared.events import CloudEvent
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> None:
    async def on_episode_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        await handlers.handle_episode_event(port_of(conn), event, deps)

    async def on_schedule_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        await handlers.apply_schedule_event(port_of(conn), event)

    runtime.subscribe_batch(
        "followup-episodes", each(on_episode_event), topics.EPISODES
    )
    runtime.subscribe_batch(
        "followup-covers",
        each(on_schedule_event),
        topics.SCHEDULES,
        group_suffix="covers",
    )
