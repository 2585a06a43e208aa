"""The reliable consumer on a real broker and a real database: dedupe, retry with
backoff, dead letters, and offsets committed only after the transaction."""

import asyncio
import base64
import itertools
import json
import time
from datetime import UTC, datetime

import pytest

from shared import topics
from shared.consumer import KEPT_OF_TOO_LARGE, PermanentError
from shared.events import CloudEvent, DeadLetter
from shared.kafka import ensure_topics
from tests.integration.shared.harness import running_service
from tests.kafka_helpers import produce, read_until


def event(n: int = 0) -> CloudEvent:
    return CloudEvent.new(
        type="mfc.test.happened",
        source="test",
        subject=f"episode-{n}",
        data={"n": n},
        time=datetime.now(UTC),
    )


async def applied_ids(runtime) -> list[str]:
    rows = await runtime.pool.fetch("SELECT event_id FROM applied ORDER BY at")
    return [r["event_id"] for r in rows]


async def eventually(check, *, within: float = 30):
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s: {result!r}")
        await asyncio.sleep(0.1)


async def record(conn, event: CloudEvent, _message) -> None:
    await conn.execute("INSERT INTO applied (event_id) VALUES ($1)", event.id)


async def dead_letters_for(infra, topic: str, count: int) -> list[DeadLetter]:
    def mine(records):
        return [
            letter
            for r in records
            if (
                letter := DeadLetter.model_validate(json.loads(r.value)["data"])
            ).original_topic
            == topic
        ]

    records = await read_until(
        infra.bootstrap_servers, topics.DEADLETTER, lambda rs: len(mine(rs)) >= count
    )
    return mine(records)


@pytest.fixture
async def topic(infra, unique):
    await ensure_topics(infra.bootstrap_servers, [unique], partitions=1)
    return unique


async def test_a_redelivered_event_is_applied_once(infra, unique, topic):
    first, other = event(1), event(2)
    async with running_service(infra, schema=unique, topic=topic, handler=record) as rt:
        await produce(
            infra.bootstrap_servers,
            topic,
            (b"k", first.to_bytes()),
            (b"k", first.to_bytes()),
            (b"k", other.to_bytes()),
            (b"k", first.to_bytes()),
        )
        await eventually(lambda: _has(rt, other.id))
        assert sorted(await applied_ids(rt)) == sorted([first.id, other.id])


async def _has(runtime, event_id: str) -> bool:
    return event_id in await applied_ids(runtime)


async def test_a_failing_handler_is_retried_with_backoff_then_succeeds(
    infra, unique, topic
):
    attempts: list[float] = []

    async def flaky(conn, event, message):
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("downstream blip")
        await record(conn, event, message)

    the_event = event()
    async with running_service(infra, schema=unique, topic=topic, handler=flaky) as rt:
        await produce(infra.bootstrap_servers, topic, (b"k", the_event.to_bytes()))
        await eventually(lambda: _has(rt, the_event.id))
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    # initial backoff 100 ms, doubling: not a hot loop.
    assert len(attempts) == 3
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19


async def test_a_poison_message_is_dead_lettered_and_the_partition_moves_on(
    infra, unique, topic
):
    poison, healthy = event(1), event(2)

    async def fails_on_poison(conn, event, message):
        if event.id == poison.id:
            raise RuntimeError("cannot apply this one")
        await record(conn, event, message)

    async with running_service(
        infra,
        schema=unique,
        topic=topic,
        handler=fails_on_poison,
        handler_max_attempts=3,
    ) as rt:
        await produce(
            infra.bootstrap_servers,
            topic,
            (b"k", poison.to_bytes()),
            (b"k", healthy.to_bytes()),
        )
        await eventually(lambda: _has(rt, healthy.id))
        [letter] = await dead_letters_for(infra, topic, 1)
    assert letter.original_event_id == poison.id
    assert letter.attempts == 3
    assert letter.reason == "cannot apply this one"
    assert letter.error_type == "RuntimeError"
    assert base64.b64decode(letter.original_base64) == poison.to_bytes()
    assert letter.original_partition == 0
    assert letter.original_offset == 0


async def test_unparseable_bytes_are_dead_lettered_at_once_with_the_original(
    infra, unique, topic
):
    garbage = b'{"not": "a cloudevent"'
    after = event()
    async with running_service(infra, schema=unique, topic=topic, handler=record) as rt:
        await produce(
            infra.bootstrap_servers,
            topic,
            (b"k", garbage),
            (b"k", after.to_bytes()),
        )
        await eventually(lambda: _has(rt, after.id))
        [letter] = await dead_letters_for(infra, topic, 1)
    assert base64.b64decode(letter.original_base64) == garbage
    assert letter.attempts == 1
    assert "not a JSON document" in letter.reason
    assert letter.original_key == "k"


async def test_a_message_over_the_bound_is_dead_lettered_with_its_first_bytes(
    infra, unique, topic
):
    big = CloudEvent.new(
        type="mfc.test.happened",
        source="test",
        subject="episode-big",
        data={"padding": "x" * 50_000},
        time=datetime.now(UTC),
    )
    after = event()
    async with running_service(
        infra, schema=unique, topic=topic, handler=record, max_message_bytes=20_000
    ) as rt:
        await produce(
            infra.bootstrap_servers,
            topic,
            (b"k", big.to_bytes()),
            (b"k", after.to_bytes()),
        )
        await eventually(lambda: _has(rt, after.id))
        [letter] = await dead_letters_for(infra, topic, 1)
        assert big.id not in await applied_ids(rt)
    assert letter.error_type == "MessageTooLargeError"
    assert f"{len(big.to_bytes()):,} bytes" in letter.reason
    assert "20,000" in letter.reason
    kept = base64.b64decode(letter.original_base64)
    assert big.to_bytes().startswith(kept)
    assert len(kept) == KEPT_OF_TOO_LARGE
    assert big.id.encode() in kept  # enough to tell whose it was
    assert letter.attempts == 1


async def test_a_permanent_refusal_is_dead_lettered_without_retries(
    infra, unique, topic
):
    calls = 0

    async def refuses(conn, event, message):
        nonlocal calls
        calls += 1
        raise PermanentError("located before reported")

    refused, after = event(1), event(2)

    async def refuse_first(conn, ev, message):
        if ev.id == refused.id:
            await refuses(conn, ev, message)
        await record(conn, ev, message)

    async with running_service(
        infra, schema=unique, topic=topic, handler=refuse_first
    ) as rt:
        await produce(
            infra.bootstrap_servers,
            topic,
            (b"k", refused.to_bytes()),
            (b"k", after.to_bytes()),
        )
        await eventually(lambda: _has(rt, after.id))
        [letter] = await dead_letters_for(infra, topic, 1)
    assert calls == 1
    assert letter.attempts == 1
    assert letter.reason == "located before reported"
    assert refused.id not in await _ids_after_stop(infra, unique)


async def _ids_after_stop(infra, schema: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(
        infra.database_url, server_settings={"search_path": schema}
    )
    try:
        return [r["event_id"] for r in await conn.fetch("SELECT event_id FROM applied")]
    finally:
        await conn.close()


async def test_an_event_not_committed_when_the_service_stopped_is_redelivered(
    infra, unique, topic
):
    """The offset is committed only after the handler's transaction: a service that
    stops (or dies) mid-retry leaves the message for the next one."""
    started = asyncio.Event()

    async def always_failing(conn, event, message):
        started.set()
        raise ConnectionError("database of a partner is down")

    the_event = event()
    async with running_service(
        infra,
        schema=unique,
        topic=topic,
        handler=always_failing,
        handler_max_attempts=50,
    ):
        await produce(infra.bootstrap_servers, topic, (b"k", the_event.to_bytes()))
        await asyncio.wait_for(started.wait(), 30)
    # Same consumer group and schema, now with a handler that works.
    async with running_service(infra, schema=unique, topic=topic, handler=record) as rt:
        await eventually(lambda: _has(rt, the_event.id))
        assert await applied_ids(rt) == [the_event.id]
