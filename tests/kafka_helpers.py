"""Reading and writing real Kafka topics in tests."""

import asyncio
import time
from collections.abc import Callable, Collection, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition


async def produce(
    bootstrap: str, topic: str, *messages: tuple[bytes | None, bytes]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    *,
    within: float = 30,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``done(records)`` or ``within`` seconds."""
    # No consumer group: assigning partitions directly skips the group join.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    await consumer.seek_to_beginning()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + within
    try:
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met in {within}s; got {len(records)} record(s)"
                )
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


async def _partitions(
    consumer: AIOKafkaConsumer, topics: Collection[str]
) -> list[TopicPartition]:
    """The partitions of those of the topics that exist."""
    await consumer._client.force_metadata_update()
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in consumer.partitions_for_topic(topic) or ()
    ]


async def end_offsets(
    bootstrap: str, topics: Collection[str]
) -> dict[TopicPartition, int]:
    """Where each partition of the topics (those that exist) ends now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics)
        return await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()


async def read_all(
    bootstrap: str,
    topics: Collection[str],
    *,
    since: Mapping[TopicPartition, int] | None = None,
    within: float = 60,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record the topics (those that exist) hold now, to the end each
    partition had when asked: from ``since`` (``end_offsets`` taken earlier; a
    partition it does not name is read from the beginning) or from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        for partition, offset in (since or {}).items():
            if partition in partitions:
                consumer.seek(partition, offset)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + within
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(records)} record(s) read in {within}s")
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(
                    r
                    for r in partition_records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return records
    finally:
        await consumer.stop()
