"""The notifier's Kafka side: canonical episode events open, satisfy and close
obligations, in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction; a
county feed fallen silent pages the county's on-call."""

from notifier import handlers
from notifier.ports import PortFactory
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
        await handlers.apply_episode_event(port_of(conn), event, deps)

    async def on_feed_event(
        conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        await handlers.apply_feed_event(port_of(conn), event, deps)

    runtime.subscribe_batch(
        "notifier-episodes", each(on_episode_event), topics.EPISODES
    )
    runtime.subscribe_batch(
        "notifier-feeds", each(on_feed_event), topics.FEEDS, group_suffix="feeds"
    )
