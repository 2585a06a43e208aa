"""Reliable, idempotent consumption of CloudEvents from Kafka.

Every subscriber of every service hands its message to ``ReliableConsumer.consume``,
which gives these guarantees:

* **Committed after the database.** The handler runs inside one database
  transaction; only when it has committed does ``consume`` return and FastStream
  commit the offset (the subscriber uses ``AckPolicy.NACK_ON_ERROR`` with auto-commit
  off). A crash in between redelivers the message.
* **Idempotent.** The event id is claimed in ``processed_events`` in that same
  transaction, so a redelivered event is skipped, whatever the handler does.
* **No hot loop, no blocked partition.** A failing handler is retried here with
  exponential backoff (FastStream's Kafka nack would seek straight back and spin,
  faststream#1721). After ``max_attempts`` the message goes to ``mfc.deadletter.v1``
  with the reason and its original bytes, and the partition moves on. A message that
  cannot be parsed, or that a handler refuses as permanently invalid, goes there at
  once. Writing the dead letter goes through the outbox; if even that fails (the
  database is away) ``consume`` raises and the message is redelivered: nothing is
  dropped.
"""

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby
from typing import Protocol, TypeVar

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared import topics
from shared.clock import Clock
from shared.db import Conn
from shared.events import CloudEvent, DeadLetter, EventType, InvalidEventError
from shared.logs import log_context
from shared.outbox import enqueue

logger = logging.getLogger(__name__)


# What a dead letter keeps of a message over the bound: enough to tell whose it was
# (a CloudEvent's id, source and type come first); the rest is what the bound is for.
KEPT_OF_TOO_LARGE = 8192


class MessageTooLargeError(InvalidEventError):
    """A message over the size bound: dead-lettered with its first bytes only, so
    the dead letter itself fits on the topic."""


class PermanentError(Exception):
    """The event is well-formed but can never be applied (e.g. it does not fit the
    episode's state). Retrying cannot help: it goes to the dead-letter topic."""


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


Handler = Callable[[Conn, CloudEvent, RawMessage], Awaitable[None]]
"""Does the work of one event inside the given connection's open transaction."""

BatchHandler = Callable[[Conn, list[tuple[CloudEvent, RawMessage]]], Awaitable[None]]
"""Does the work of several new (never handled) events in one open transaction."""


class BatchPort(Protocol):
    async def flush(self) -> None:
        """Write what the batch's handlers deferred, in its transaction."""


P = TypeVar("P", bound=BatchPort)

PortHandler = Callable[[P, Sequence[CloudEvent]], Awaitable[None]]
"""Does the work of a batch's events, in order, through one port."""


def on_port(port_of: Callable[[Conn], P], handler: PortHandler[P]) -> BatchHandler:
    """A batch handler that hands the batch's events to ``handler`` inside the
    batch's one transaction (``subscribe_batch``: one claim and one commit per batch
    instead of per event), with one port for the whole batch, flushed after its
    last event and before the commit (``shared.effects``: the batch's timer steps
    and events go in one statement each)."""

    async def handle(conn: Conn, batch: list[tuple[CloudEvent, RawMessage]]) -> None:
        port = port_of(conn)
        await handler(port, [event for event, _message in batch])
        await port.flush()

    return handle


def one_by_one(
    handler: Callable[[P, CloudEvent], Awaitable[None]],
) -> PortHandler[P]:
    """A ``PortHandler`` that handles each event alone, in order."""

    async def handle(port: P, events: Sequence[CloudEvent]) -> None:
        for event in events:
            with log_context(event_id=event.id, episode_id=event.subject):
                await handler(port, event)

    return handle


async def in_runs(
    events: Sequence[CloudEvent],
    together: str,
    run: Callable[[list[CloudEvent]], Awaitable[None]],
    one: Callable[[CloudEvent], Awaitable[None]],
) -> None:
    """A batch's events in order: those of type ``together`` next to each other as
    one run (``run``, a statement per table for all of them), the others one at a
    time (``one``)."""
    for grouped, run_of in groupby(events, key=lambda e: e.type == together):
        if grouped:
            await run(list(run_of))
            continue
        for event in run_of:
            with log_context(event_id=event.id, episode_id=event.subject):
                await one(event)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: timedelta = timedelta(milliseconds=200)
    max_backoff: timedelta = timedelta(seconds=10)

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        seconds = self.initial_backoff.total_seconds() * 2 ** (attempt - 1)
        return float(min(seconds, self.max_backoff.total_seconds()))


class ConsumerMetrics:
    """The metrics of every reliable consumer of one service, by consumer name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "mfc_messages_total",
            "Consumed messages by outcome",
            ["consumer", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "mfc_handler_seconds",
            "Time to handle one message, retries included",
            ["consumer"],
            registry=registry,
        )


class ReliableConsumer:
    def __init__(
        self,
        *,
        name: str,
        source: str,
        pool_provider: Callable[[], asyncpg.Pool],
        clock: Clock,
        metrics: ConsumerMetrics,
        retry: RetryPolicy,
        max_message_bytes: int | None = None,
        unreadable_left_to: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._max_bytes = max_message_bytes
        # topic -> the consumer that owns it and dead-letters what it cannot read
        self._left_to = dict(unreadable_left_to or {})
        self._source = source
        # A provider, not a pool: subscribers are declared before the pool opens.
        self._pool = pool_provider
        self._clock = clock
        self._retry = retry
        self._outcomes = metrics.outcomes
        self._seconds = metrics.seconds

    async def consume(self, message: RawMessage, handler: Handler) -> None:
        started = time.perf_counter()
        try:
            event = self._parse(message)
        except InvalidEventError as exc:
            await self._unreadable(message, exc)
            return
        with log_context(event_id=event.id, episode_id=event.subject):
            await self._consume_event(message, event, handler)
        self._seconds.labels(self.name).observe(time.perf_counter() - started)

    async def consume_batch(
        self, messages: list[RawMessage], handler: BatchHandler
    ) -> None:
        """Handle a batch in one transaction: one commit instead of one per event.

        Ids already handled (and repeats inside the batch) are left out. If the
        batch fails, its events are handled one at a time with the usual retries
        and dead letters, so one bad event never holds back the others.
        """
        started = time.perf_counter()
        parsed: list[tuple[CloudEvent, RawMessage]] = []
        for message in messages:
            try:
                parsed.append((self._parse(message), message))
            except InvalidEventError as exc:
                await self._unreadable(message, exc)
        if not parsed:
            return
        try:
            async with self._pool().acquire() as conn, conn.transaction():
                claimed = await claim_many(
                    conn, consumer=self.name, event_ids=[e.id for e, _ in parsed]
                )
                fresh = []
                for event, message in parsed:
                    if event.id in claimed:
                        claimed.discard(event.id)
                        fresh.append((event, message))
                if fresh:
                    await handler(conn, fresh)
        except Exception as exc:
            logger.warning(
                "batch of %d failed (%s: %s); handling its events one by one",
                len(parsed),
                type(exc).__name__,
                exc,
            )

            async def one(conn: Conn, event: CloudEvent, message: RawMessage) -> None:
                await handler(conn, [(event, message)])

            for event, message in parsed:
                with log_context(event_id=event.id, episode_id=event.subject):
                    await self._consume_event(message, event, one)
            return
        self._outcomes.labels(self.name, "processed").inc(len(fresh))
        self._outcomes.labels(self.name, "duplicate").inc(len(parsed) - len(fresh))
        self._seconds.labels(self.name).observe(time.perf_counter() - started)

    async def _consume_event(
        self, message: RawMessage, event: CloudEvent, handler: Handler
    ) -> None:
        last_error: Exception | None = None
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                handled = await self._handle_once(message, event, handler)
            except (InvalidEventError, PermanentError) as exc:
                await self._dead_letter(message, exc, attempts=attempt, event=event)
                return
            except Exception as exc:
                last_error = exc
                if attempt == self._retry.max_attempts:
                    break
                delay = self._retry.delay_after(attempt)
                logger.warning(
                    "attempt %d of %s failed (%s: %s); retrying in %.2fs",
                    attempt,
                    event.type,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._outcomes.labels(self.name, "retried").inc()
                await asyncio.sleep(delay)
                continue
            self._outcomes.labels(
                self.name, "processed" if handled else "duplicate"
            ).inc()
            return
        assert last_error is not None
        await self._dead_letter(
            message, last_error, attempts=self._retry.max_attempts, event=event
        )

    async def _handle_once(
        self, message: RawMessage, event: CloudEvent, handler: Handler
    ) -> bool:
        async with self._pool().acquire() as conn, conn.transaction():
            if not await claim(conn, consumer=self.name, event_id=event.id):
                logger.info("duplicate %s skipped", event.type)
                return False
            await handler(conn, event, message)
            return True

    async def _unreadable(self, message: RawMessage, error: InvalidEventError) -> None:
        """A message that is no CloudEvent (or over the bound) is dead-lettered, once:
        on a topic whose owner dead-letters it (``unreadable_left_to``), that dead
        letter is the record, and a second one would tell the trail twice."""
        owner = self._left_to.get(message.topic)
        if owner is None:
            await self._dead_letter(message, error, attempts=1, event=error.event)
            return
        logger.info(
            "unreadable message at %s[%d]@%d left to %s, which dead-letters it: %s",
            message.topic,
            message.partition,
            message.offset,
            owner,
            type(error).__name__,
        )
        self._outcomes.labels(self.name, "left_to_owner").inc()

    def _parse(self, message: RawMessage) -> CloudEvent:
        """The message's CloudEvent; one over the size bound is not even parsed (on
        a topic others write: ``topics.OWN`` are not bounded)."""
        if (
            self._max_bytes is not None
            and len(message.value) > self._max_bytes
            and message.topic not in topics.OWN
        ):
            raise MessageTooLargeError(
                f"the message is {len(message.value):,} bytes, more than the "
                f"{self._max_bytes:,} this service accepts (MAX_MESSAGE_BYTES): send "
                "less (a photo goes by its URL), or ask the operators to raise it; "
                f"the dead letter keeps its first {KEPT_OF_TOO_LARGE:,} bytes"
            )
        return CloudEvent.from_bytes(message.value)

    def _kept(self, message: RawMessage, error: Exception) -> bytes:
        if isinstance(error, MessageTooLargeError):
            return message.value[:KEPT_OF_TOO_LARGE]
        return message.value

    async def _dead_letter(
        self,
        message: RawMessage,
        error: Exception,
        *,
        attempts: int,
        event: CloudEvent | None,
    ) -> None:
        dedupe_key = event.id if event is not None else message.position
        reason = str(error) or type(error).__name__
        letter = DeadLetter(
            reason=reason[:4000],
            error_type=type(error).__name__,
            consumer=self.name,
            attempts=attempts,
            original_topic=message.topic,
            original_partition=message.partition,
            original_offset=message.offset,
            original_key=message.key.decode(errors="replace") if message.key else None,
            original_event_id=event.id if event is not None else None,
            original_base64=base64.b64encode(self._kept(message, error)).decode(),
        )
        subject = event.subject if event is not None else letter.original_key
        async with self._pool().acquire() as conn, conn.transaction():
            # Claiming the id keeps a redelivered poison message from being
            # dead-lettered twice, or processed after it was dead-lettered.
            if not await claim(conn, consumer=self.name, event_id=dedupe_key):
                return
            await enqueue(
                conn,
                topic=topics.DEADLETTER,
                event=CloudEvent.new(
                    type=EventType.DEADLETTER_RECORDED,
                    source=self._source,
                    subject=subject,
                    data=letter,
                    time=self._clock.now(),
                ),
            )
        self._outcomes.labels(self.name, "dead_lettered").inc()
        logger.error(
            "dead-lettered message at %s after %d attempt(s): %s",
            message.position,
            attempts,
            reason,
        )


async def claim_many(conn: Conn, *, consumer: str, event_ids: list[str]) -> set[str]:
    """Record that ``consumer`` handles these ids; return those it had not yet."""
    rows = await conn.fetch(
        "INSERT INTO processed_events (consumer, event_id) "
        "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        event_ids,
    )
    return {r["event_id"] for r in rows}


async def claim(conn: Conn, *, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id``; False if it already did."""
    claimed = await conn.fetchval(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return bool(claimed)
