"""Consumer lag as a metric: how many records of each partition this replica holds
its consumer group has not yet committed.

Lag is the first sign of a stuck or slow consumer: a notifier behind on
``mfc.episodes.v1`` opens obligations late, however correct its timers are. The
gauge is measured in a background round (committed offsets need a broker round
trip, which a scrape must not wait for) and is what the ``ConsumerLag`` alert rule
and the tests that wait for a replica to catch up read.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from shared.periodic import Periodic

logger = logging.getLogger(__name__)


async def measure_lag(consumers: Iterable[Any]) -> dict[tuple[str, int], int] | None:
    """Records not yet committed per assigned (topic, partition).

    ``None`` while any assigned partition has no high watermark yet (nothing fetched
    since the assignment): "unknown" must not read as "caught up". A partition the
    group never committed counts from offset 0.
    """
    lag: dict[tuple[str, int], int] = {}
    for consumer in consumers:
        for partition in consumer.assignment():
            high = consumer.highwater(partition)
            if high is None:
                return None
            committed = await consumer.committed(partition)
            lag[(partition.topic, partition.partition)] = max(
                0, high - (committed or 0)
            )
    return lag


class ConsumerLag:
    """``mfc_consumer_lag{topic,partition}`` for the consumers ``consumers()``
    returns; a partition appears while this replica holds it."""

    def __init__(
        self,
        consumers: Callable[[], Iterable[Any]],
        registry: CollectorRegistry,
        *,
        interval: float,
    ) -> None:
        self._consumers = consumers
        self._gauge = Gauge(
            "mfc_consumer_lag",
            "Records of a partition this replica holds that its consumer group has "
            "not committed yet",
            ["topic", "partition"],
            registry=registry,
        )
        self._periodic = Periodic("consumer-lag", self.measure, interval=interval)

    async def measure(self) -> dict[tuple[str, int], int] | None:
        lag = await measure_lag(self._consumers())
        self._gauge.clear()
        for (topic, partition), behind in (lag or {}).items():
            self._gauge.labels(topic=topic, partition=str(partition)).set(behind)
        return lag

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
