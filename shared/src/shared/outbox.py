"""Transactional outbox: write events with the state change, publish them after.

FastStream has no Kafka transactions and our broker has no idempotent producer
(INFRA.md), so a service never publishes from a handler. It inserts the event into
its ``outbox`` table in the same database transaction as the state change; the relay
publishes committed rows in id order and deletes them once the broker has taken them
(a mark would rewrite each row, payload and all, and keep it for ever). A crash
between the publish and the delete republishes the rows: delivery is
at-least-once, and every consumer dedupes on the CloudEvent ``id``. The outbox holds
only what is still to publish; the topic is the record of what was.
"""

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy
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


# The lock that makes one relay per schema the publisher; a session lock, held by
# the leader's connection for as long as it leads.
_LEAD = "SELECT pg_try_advisory_lock(hashtext('mfc-outbox:' || current_schema()))"
_RESIGN = "SELECT pg_advisory_unlock(hashtext('mfc-outbox:' || current_schema()))"


class OutboxRelay(PollingWorker):
    """Publishes committed outbox rows and deletes them; one relay per schema
    publishes at a time.

    Order matters (one episode's events in sequence), so replicas do not publish in
    parallel. The relay that takes a session advisory lock leads: it keeps that
    pooled connection and lock while it runs, so a round is two statements (read
    the oldest rows, delete what the broker took) with no transaction around them.
    The others try the lock at each round and publish nothing meanwhile. A failed
    round (broker or database away) gives the lock up with the connection and is
    retried with backoff; a leader whose connection dies loses the lock with it, and
    another replica (or this one, next round) takes over. Rows published but not
    yet deleted when that happens are published again: at-least-once, in order of
    first arrival, and every consumer dedupes.

    After a round that found rows the relay lingers (50 ms by default) before the
    next, so that under load a round carries a batch, not a row or two.
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
        linger: timedelta = timedelta(milliseconds=50),
    ) -> None:
        super().__init__(
            pool,
            channel=NOTIFY_CHANNEL,
            batch_size=batch_size,
            poll_interval=poll_interval,
            max_backoff=max_backoff,
            linger=linger,
        )
        self._publisher = publisher
        self._leader: PoolConnectionProxy | None = None
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
        """Publish one batch if this replica leads; return rows published."""
        conn = await self._lead()
        if conn is None:
            return 0
        try:
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
        except BaseException:
            await self._resign()
            raise
        self._published.inc(len(rows))
        self._pending.set(remaining)
        return len(rows)

    async def _lead(self) -> PoolConnectionProxy | None:
        """The connection holding this schema's relay lock, taken now if it is
        free; None while another replica leads."""
        if self._leader is not None:
            return self._leader
        conn = await self._pool.acquire()
        try:
            led = await conn.fetchval(_LEAD)
        except BaseException:
            await self._pool.release(conn)
            raise
        if not led:
            await self._pool.release(conn)
            return None
        self._leader = conn
        return conn

    async def _resign(self) -> None:
        """Give the lock up with the connection. Pooled connections are handed back
        without a reset (``shared.db.PooledConnection``), so the lock is released
        here; a connection that cannot release it is closed, which does."""
        conn, self._leader = self._leader, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await conn.fetchval(_RESIGN)
        except Exception:
            conn.terminate()
        await self._pool.release(conn)

    async def run_once(self) -> int:
        try:
            return await self.publish_pending()
        except Exception:
            # Broker or database away: the rows stay and the loop backs off.
            self._failures.inc()
            raise

    async def stop(self) -> None:
        await super().stop()
        await self._resign()
