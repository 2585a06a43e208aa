"""Followup's Kafka side: canonical episode events start and end prompt series,
in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction; the notifier's
on-call covers are kept for the escalations."""

from collections.abc import Sequence

from followup import handlers
from followup.ports import Followup, PortFactory
from shared import topics
from shared.consumer import on_port, one_by_one
from shared.events import CloudEvent
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> None:
    """``port_of``: one port per batch, whose deferred writes go at its end."""

    async def on_episode_events(port: Followup, events: Sequence[CloudEvent]) -> None:
        await handlers.handle_episode_events(port, events, deps)

    async def on_schedule_event(port: Followup, event: CloudEvent) -> None:
        await handlers.apply_schedule_event(port, event)

    runtime.subscribe_batch(
        "followup-episodes", on_port(port_of, on_episode_events), topics.EPISODES
    )
    runtime.subscribe_batch(
        "followup-covers",
        on_port(port_of, one_by_one(on_schedule_event)),
        topics.SCHEDULES,
        group_suffix="covers",
    )
