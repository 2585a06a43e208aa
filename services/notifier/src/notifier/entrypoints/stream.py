"""The notifier's Kafka side: canonical episode events open, satisfy and close
obligations, in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction; a
county feed fallen silent pages the county's on-call."""

from notifier import handlers
from notifier.ports import Notifier, PortFactory
from shared import topics
from shared.consumer import each_on
from shared.events import CloudEvent
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> None:
    """``port_of``: one port per batch, whose deferred writes go at its end."""

    async def on_episode_event(port: Notifier, event: CloudEvent) -> None:
        await handlers.apply_episode_event(port, event, deps)

    async def on_feed_event(port: Notifier, event: CloudEvent) -> None:
        await handlers.apply_feed_event(port, event, deps)

    runtime.subscribe_batch(
        "notifier-episodes", each_on(port_of, on_episode_event), topics.EPISODES
    )
    runtime.subscribe_batch(
        "notifier-feeds",
        each_on(port_of, on_feed_event),
        topics.FEEDS,
        group_suffix="feeds",
    )
