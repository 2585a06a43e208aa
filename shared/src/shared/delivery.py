"""Alert delivery, shared by the notifier and followup services.

Deliveries are rows (``deliveries``, migrations in ``shared.delivery_migrations``)
written in the transaction that decided the alert. A worker claims due rows with
``FOR UPDATE SKIP LOCKED`` (so replicas never send one row twice), sends them, logs
every attempt, retries failures with exponential backoff, and after the last attempt
marks the row failed. In the transaction that records a batch's outcomes it publishes
``mfc.alert.sent`` / ``mfc.alert.failed`` (``shared.alerts``); the bookkeeping of a
whole batch takes a constant number of statements.

Channels: a webhook (a JSON POST signed as the Standard Webhooks specification says:
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, with the maintained
``standardwebhooks`` package; ``X-MFC-Delivery`` repeats the id) and email over SMTP.
A crash between a send and its commit resends it: receivers dedupe on
``webhook-id`` / the Message-ID.
"""

import asyncio
import json
import logging
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from uuid import UUID

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram
from standardwebhooks.webhooks import Webhook

from shared.alerts import NOTIFY_CHANNEL, failed_event, sent_event
from shared.clock import Clock, SystemClock
from shared.config import AlertingSettings
from shared.db import Conn
from shared.outbox import enqueue_many
from shared.polling import PollingWorker
from shared.published import Outgoing

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
"""Deliveries a worker claims at a time (a crash may resend up to this many)."""


class Channel(Protocol):
    name: str

    async def send(
        self, *, delivery_id: str, address: str, payload: dict[str, Any]
    ) -> None:
        """Deliver or raise; the message says why it failed."""
        ...

    async def aclose(self) -> None:
        """Release what sending holds (connections); ``send`` may follow again."""
        ...


def signed_headers(
    delivery_id: str,
    body: bytes,
    secrets: Sequence[str | Webhook],
    sent_at: datetime,
) -> dict[str, str]:
    """The Standard Webhooks headers of one POST: the id (the same on every retry,
    the receiver's idempotency key), the time of this attempt, and a ``v1``
    signature per secret (two while a secret is being rotated)."""
    sent_at = sent_at.astimezone(UTC)
    text = body.decode()
    signers = [s if isinstance(s, Webhook) else Webhook(s) for s in secrets]
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(
            signer.sign(delivery_id, sent_at, text) for signer in signers
        ),
    }


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("a webhook needs at least one signing secret")
        # Decoded once: a storm signs thousands of POSTs a minute.
        self._signers = [Webhook(secret) for secret in secrets]
        self._clock = clock or SystemClock()
        self._timeout = timeout
        # One session for every send: its pool keeps connections to the receiver
        # open (a client per send built a TLS context each time: 19 ms an alert).
        # aiohttp rather than httpx: in a storm httpx's pool cost the notifier 2 ms
        # of CPU per POST, half of all it did (py-spy, bench.escalations); aiohttp
        # sends the same POST for a tenth of that.
        self._session: aiohttp.ClientSession | None = None

    async def send(
        self, *, delivery_id: str, address: str, payload: dict[str, Any]
    ) -> None:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-MFC-Delivery": delivery_id,
            **signed_headers(delivery_id, body, self._signers, self._clock.now()),
        }
        if self._session is None:
            # As many kept-alive connections as a worker's batch sends at once.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=BATCH_SIZE),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        try:
            async with self._session.post(
                address, data=body, headers=headers
            ) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            raise TimeoutError(f"no answer within {self._timeout:g} s") from None
        if status >= 300:
            raise RuntimeError(f"webhook answered {status}")

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class EmailChannel:
    name = "email"

    def __init__(
        self, *, host: str, port: int, sender: str, timeout: float = 10.0
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout = timeout

    async def send(
        self, *, delivery_id: str, address: str, payload: dict[str, Any]
    ) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = address
        message["Subject"] = payload["subject"]
        message["Message-ID"] = make_msgid(idstring=delivery_id.replace(":", "."))
        message["X-MFC-Delivery"] = delivery_id
        message.set_content(payload["text"])
        await asyncio.to_thread(self._send_sync, message)

    def _send_sync(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            smtp.send_message(message)

    async def aclose(self) -> None:
        """Nothing held: each message has its own SMTP session."""


@dataclass(frozen=True)
class Delivery:
    id: int
    alert_id: UUID
    episode_id: UUID | None
    channel: str
    address: str
    payload: dict[str, Any]
    attempts: int
    scheduled_at: datetime


_CLAIM = (
    "SELECT id, alert_id, episode_id, channel, address, payload, attempts, "
    "scheduled_at FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 "
    "ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
)
# A batch's bookkeeping in two statements: every attempt logged, every row updated.
_LOG_ATTEMPTS = (
    "INSERT INTO delivery_attempts (delivery_id, attempted_at, ok, detail) "
    "SELECT d, $3, e IS NULL, e FROM unnest($1::bigint[], $2::text[]) AS u(d, e)"
)
_RECORD = """
UPDATE deliveries AS d
SET attempts = u.a,
    status = u.s,
    sent_at = CASE WHEN u.s = 'sent' THEN $6::timestamptz END,
    last_error = u.e,
    next_attempt_at = coalesce(u.n, d.next_attempt_at)
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::timestamptz[])
     AS u(id, a, s, e, n)
WHERE d.id = u.id
"""


class DeliveryWorker(PollingWorker):
    """Sends queued deliveries; ``source`` names the service in the alert events."""

    name = "delivery-worker"

    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[str, Channel],
        *,
        clock: Clock,
        registry: CollectorRegistry,
        source: str,
        max_attempts: int = 6,
        initial_backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        poll_interval: timedelta = timedelta(milliseconds=500),
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(
            pool,
            channel=NOTIFY_CHANNEL,
            clock=clock,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self._time = clock
        self._channels = dict(channels)
        self._source = source
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_retry_backoff = max_backoff
        self._sent = Counter(
            "mfc_deliveries_sent_total",
            "Alert deliveries sent",
            ["channel"],
            registry=registry,
        )
        self._failures = Counter(
            "mfc_delivery_failures_total",
            "Failed delivery attempts (final=true: given up)",
            ["channel", "final"],
            registry=registry,
        )
        self._lateness = Histogram(
            "mfc_alert_lateness_seconds",
            "Delivery time minus the time the alert was scheduled for",
            ["channel"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )

    def backoff(self, attempts: int) -> timedelta:
        delay: timedelta = self._initial_backoff * 2 ** (attempts - 1)
        return min(delay, self._max_retry_backoff)

    async def run_once(self) -> int:
        return await self.deliver_due()

    async def deliver_due(self) -> int:
        now = self._time.now()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, self._batch_size)
            batch = [
                Delivery(
                    r["id"],
                    r["alert_id"],
                    r["episode_id"],
                    r["channel"],
                    r["address"],
                    r["payload"],
                    r["attempts"],
                    r["scheduled_at"],
                )
                for r in rows
            ]
            errors = await asyncio.gather(*(self._attempt(d) for d in batch))
            if batch:
                await self._record(conn, batch, errors, self._time.now())
        return len(batch)

    async def _attempt(self, delivery: Delivery) -> str | None:
        channel = self._channels.get(delivery.channel)
        if channel is None:
            return f"no {delivery.channel} channel configured"
        try:
            await channel.send(
                delivery_id=f"{delivery.alert_id}:{delivery.channel}:{delivery.address}",
                address=delivery.address,
                payload=delivery.payload,
            )
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return None

    async def _record(
        self,
        conn: Conn,
        batch: Sequence[Delivery],
        errors: Sequence[str | None],
        now: datetime,
    ) -> None:
        """Log every attempt, update every row and publish what happened, in a
        constant number of statements however large the batch."""
        attempts = [d.attempts + 1 for d in batch]
        await conn.execute(_LOG_ATTEMPTS, [d.id for d in batch], list(errors), now)
        statuses, retries, events = [], [], []
        for delivery, error, tries in zip(batch, errors, attempts, strict=True):
            status, retry, event = self._outcome(delivery, error, tries, now)
            statuses.append(status)
            retries.append(retry)
            if event is not None:
                events.append(event)
        await conn.execute(
            _RECORD,
            [d.id for d in batch],
            attempts,
            statuses,
            list(errors),
            retries,
            now,
        )
        await enqueue_many(conn, events)

    def _outcome(
        self, delivery: Delivery, error: str | None, attempts: int, now: datetime
    ) -> tuple[str, datetime | None, Outgoing | None]:
        """The row's new status, its next attempt if retried, and the event to publish."""
        if error is None:
            self._sent.labels(delivery.channel).inc()
            self._lateness.labels(delivery.channel).observe(
                max((now - delivery.scheduled_at).total_seconds(), 0.0)
            )
            return (
                "sent",
                None,
                sent_event(
                    self._source,
                    alert_id=delivery.alert_id,
                    episode_id=delivery.episode_id,
                    channel=delivery.channel,
                    attempts=attempts,
                    scheduled_at=delivery.scheduled_at,
                    sent_at=now,
                ),
            )
        final = attempts >= self._max_attempts
        self._failures.labels(delivery.channel, str(final).lower()).inc()
        logger.warning(
            "delivery %s over %s failed (attempt %d): %s",
            delivery.id,
            delivery.channel,
            attempts,
            error,
        )
        if not final:
            return "pending", now + self.backoff(attempts), None
        return (
            "failed",
            None,
            failed_event(
                self._source,
                alert_id=delivery.alert_id,
                episode_id=delivery.episode_id,
                channel=delivery.channel,
                attempts=attempts,
                error=error,
                now=now,
            ),
        )

    async def stop(self) -> None:
        await super().stop()
        for channel in self._channels.values():
            await channel.aclose()


def channels_from(
    settings: "AlertingSettings", clock: Clock | None = None
) -> dict[str, Channel]:
    """The channels the settings configure: webhook and/or email."""
    channels: dict[str, Channel] = {}
    if settings.webhook_url and settings.webhook_secret is not None:
        channels["webhook"] = WebhookChannel(
            settings.webhook_secret.get_secret_value().split(), clock=clock
        )
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
        )
    return channels
