"""The notifier's Kafka side: canonical episode events open, satisfy and close
obligations, in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction; a
county feed fallen silent pages the county's on-call."""

from collections.abc import Sequence

from notifier import handlers
from notifier.ports import Notifier, PortFactory
from shared import topics
from shared.consumer import on_port, one_by_one
from shared.events import CloudEvent
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> None:
    """``port_of``: one port per batch, whose deferred writes go at its end."""

    async def on_episode_events(port: Notifier, events: Sequence[CloudEvent]) -> None:
        await handlers.apply_episode_events(port, events, deps)

    async def on_feed_event(port: Notifier, event: CloudEvent) -> None:
        await handlers.apply_feed_event(port, event, deps)

    runtime.subscribe_batch(
        "notifier-episodes", on_port(port_of, on_episode_events), topics.EPISODES
    )
    runtime.subscribe_batch(
        "notifier-feeds",
        on_port(port_of, one_by_one(on_feed_event)),
        topics.FEEDS,
        group_suffix="feeds",
    )
