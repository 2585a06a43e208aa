"""Transactional outbox: write events with the state change, publish them after.

FastStream has no Kafka transactions and our broker has no idempotent producer
(INFRA.md), so a service never publishes from a handler. It inserts the event into
its ``outbox`` table in the same database transaction as the state change; the relay
publishes committed rows in id order and deletes them in the transaction that saw the
broker take them (a mark would rewrite each row, payload and all, and keep it for
ever). A crash between the publish and the delete republishes the rows: delivery is
at-least-once, and every consumer dedupes on the CloudEvent ``id``. The outbox holds
only what is still to publish; the topic is the record of what was.
"""

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.db import Conn
from shared.events import CloudEvent
from shared.polling import PollingWorker
from shared.published import PUBLISHED, Outgoing, checked

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "mfc_outbox"


async def enqueue(conn: Conn, *, topic: str, event: CloudEvent) -> None:
    """Add an event to the outbox inside the caller's transaction.

    The key is the event's subject (the episode id), which keeps one episode's
    events on one partition and so in order. An event of a service topic is checked
    against its published model first (``shared.published``), so what is sent cannot
    drift from the documented contract.

    Raises:
        ContractError: the event's data does not match its model.
    """
    if topic in PUBLISHED:
        checked(topic, event.type, event.data)
    key = event.subject or event.id
    # One round trip: the NOTIFY (delivered at commit, it wakes the relay without
    # waiting for its poll) goes with the INSERT, and only if a row was added.
    await conn.execute(
        "WITH added AS (INSERT INTO outbox (topic, key, event_id, payload) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING RETURNING 1) "
        "SELECT pg_notify($5, current_schema()) FROM added",
        topic,
        key,
        event.id,
        event.to_bytes(),
        NOTIFY_CHANNEL,
    )


async def enqueue_many(conn: Conn, events: Sequence[Outgoing]) -> None:
    """Add events built from their published models (``shared.published.outgoing``,
    validated there) to the outbox in one statement, in order."""
    if not events:
        return
    await conn.execute(
        "WITH added AS (INSERT INTO outbox (topic, key, event_id, payload) "
        "SELECT t, k, i, p FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) "
        "WITH ORDINALITY AS u(t, k, i, p, n) ORDER BY n "
        "ON CONFLICT (event_id) DO NOTHING RETURNING 1) "
        "SELECT pg_notify($5, current_schema()) FROM added LIMIT 1",
        [o.topic for o in events],
        [o.event.subject or o.event.id for o in events],
        [o.event.id for o in events],
        [o.event.to_bytes() for o in events],
        NOTIFY_CHANNEL,
    )


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes


class Publisher(Protocol):
    """Sends a batch of messages and returns once the broker has every one."""

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> Awaitable[None]: ...


class OutboxRelay(PollingWorker):
    """Publishes committed outbox rows and deletes them; one relay per schema is
    active at a time.

    Order matters (one episode's events in sequence), so replicas do not publish in
    parallel: a transaction-level advisory lock picks the one that publishes each
    batch, and the others wait for the next round. A failed publish rolls the batch
    back and is retried with backoff.
    """

    name = "outbox-relay"

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        registry: CollectorRegistry,
        batch_size: int = 500,
        poll_interval: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(seconds=30),
    ) -> None:
        super().__init__(
            pool,
            channel=NOTIFY_CHANNEL,
            batch_size=batch_size,
            poll_interval=poll_interval,
            max_backoff=max_backoff,
        )
        self._publisher = publisher
        self._published = Counter(
            "mfc_outbox_published_total", "Outbox rows published", registry=registry
        )
        self._failures = Counter(
            "mfc_outbox_publish_failures_total",
            "Failed outbox publish rounds",
            registry=registry,
        )
        self._pending = Gauge(
            "mfc_outbox_pending",
            "Unpublished outbox rows at the last round",
            registry=registry,
        )

    async def publish_pending(self) -> int:
        """Publish one batch if this replica holds the lock; return rows published."""
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext('mfc-outbox:' || current_schema()))"
            )
            if not locked:
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, key, payload FROM outbox ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                self._pending.set(0)
                return 0
            await self._publisher.publish_batch(
                [
                    OutgoingMessage(r["topic"], r["key"].encode(), r["payload"])
                    for r in rows
                ]
            )
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
            # A batch that was not full took every row committed when it was read.
            full = len(rows) == self._batch_size
            remaining = (
                await conn.fetchval("SELECT count(*) FROM outbox") if full else 0
            )
        self._published.inc(len(rows))
        self._pending.set(remaining)
        return len(rows)

    async def run_once(self) -> int:
        try:
            return await self.publish_pending()
        except Exception:
            # Broker or database away: the rows stay and the loop backs off.
            self._failures.inc()
            raise
