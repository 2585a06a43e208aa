"""Consumer lag on a real broker: records a handler has not finished count as lag
until their offsets are committed, and the gauge falls to zero when it catches up."""

import asyncio
from datetime import timedelta

import pytest

from shared.kafka import ensure_topics
from tests.integration.shared.harness import running_service
from tests.integration.shared.test_consumer import event, eventually, record
from tests.kafka_helpers import produce


@pytest.fixture
async def topic(infra, unique):
    await ensure_topics(infra.bootstrap_servers, [unique], partitions=1)
    return unique


def gauge(runtime, topic: str) -> float | None:
    return runtime.registry.get_sample_value(
        "mfc_consumer_lag", {"topic": topic, "partition": "0"}
    )


async def test_lag_counts_uncommitted_records_and_returns_to_zero(infra, unique, topic):
    release = asyncio.Event()

    async def slow(conn, ev, message):
        await release.wait()
        await record(conn, ev, message)

    async with running_service(
        infra,
        schema=unique,
        topic=topic,
        handler=slow,
        consumer_lag_interval=timedelta(milliseconds=100),
    ) as runtime:
        await produce(
            infra.bootstrap_servers,
            topic,
            *[(b"k", event(n).to_bytes()) for n in range(3)],
        )

        async def behind_by_three():
            return gauge(runtime, topic) == 3

        await eventually(behind_by_three)
        release.set()

        async def caught_up():
            return gauge(runtime, topic) == 0

        await eventually(caught_up)
        rows = await runtime.pool.fetchval("SELECT count(*) FROM applied")
        assert rows == 3
