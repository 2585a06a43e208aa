"""Alert delivery, shared by the notifier and followup services.

Deliveries are rows (``deliveries``, migrations in ``shared.delivery_migrations``)
written in the transaction that decided the alert. A worker claims due rows with
``FOR UPDATE SKIP LOCKED`` (so replicas never send one row twice), sends them, logs
every attempt, retries failures with exponential backoff, and after the last attempt
marks the row failed and calls ``on_failed`` (which emits ``mfc.alert.failed``).

Channels: a webhook (JSON POST with ``X-MFC-Signature: sha256=<HMAC-SHA256 of the
body>`` and ``X-MFC-Delivery`` as the receiver's idempotency key) and email over SMTP.
A crash between a send and its commit resends it: receivers dedupe on
``X-MFC-Delivery`` / the Message-ID.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.clock import Clock
from shared.config import AlertingSettings
from shared.db import Conn, Wakeup

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "mfc_deliveries"
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


def sign(body: bytes, secret: str) -> str:
    """The ``X-MFC-Signature`` header value for a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: str, *, timeout: float = 5.0) -> None:
        self._secret = secret
        self._timeout = timeout
        # One client for every send: its pool keeps connections to the receiver
        # open. A client per send built a TLS context each time (most of the
        # notifier's CPU, 19 ms an alert: breaches due at 100/s were paged 20 s
        # late, bench.escalations).
        self._client: httpx.AsyncClient | None = None

    async def send(
        self, *, delivery_id: str, address: str, payload: dict[str, Any]
    ) -> None:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-MFC-Signature": sign(body, self._secret),
            "X-MFC-Delivery": delivery_id,
        }
        if self._client is None:
            # As many kept-alive connections as a worker's batch sends at once:
            # with httpx's default of 20, the other 30 were opened and closed
            # again on every batch.
            connections = httpx.Limits(
                max_connections=BATCH_SIZE, max_keepalive_connections=BATCH_SIZE
            )
            self._client = httpx.AsyncClient(timeout=self._timeout, limits=connections)
        answer = await self._client.post(address, content=body, headers=headers)
        if answer.status_code >= 300:
            raise RuntimeError(f"webhook answered {answer.status_code}")

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


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


async def enqueue_delivery(
    conn: Conn,
    *,
    alert_id: UUID,
    episode_id: UUID | None,
    channel: str,
    address: str,
    payload: dict[str, Any],
    scheduled_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO deliveries (alert_id, episode_id, channel, address, payload, "
        "next_attempt_at, scheduled_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (alert_id, channel, address) DO NOTHING",
        alert_id,
        episode_id,
        channel,
        address,
        payload,
        now,
        scheduled_at,
    )
    await conn.execute("SELECT pg_notify($1, current_schema())", NOTIFY_CHANNEL)


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
    last_error: str | None = None


DeliveryCallback = Callable[[Conn, Delivery, datetime], Awaitable[None]]


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[str, Channel],
        *,
        clock: Clock,
        registry: CollectorRegistry,
        on_sent: DeliveryCallback,
        on_failed: DeliveryCallback,
        max_attempts: int = 6,
        initial_backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        poll_interval: timedelta = timedelta(milliseconds=500),
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._pool = pool
        self._channels = dict(channels)
        self._clock = clock
        self._on_sent = on_sent
        self._on_failed = on_failed
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._poll = poll_interval.total_seconds()
        self._batch_size = batch_size
        self._wakeup = Wakeup(pool, NOTIFY_CHANNEL)
        self._task: asyncio.Task[None] | None = None
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
        return min(delay, self._max_backoff)

    async def deliver_due(self) -> int:
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, alert_id, episode_id, channel, address, payload, attempts, "
                "scheduled_at FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 "
                "ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                self._batch_size,
            )
            deliveries = [
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
            outcomes = await asyncio.gather(
                *(self._attempt(d) for d in deliveries), return_exceptions=False
            )
            for delivery, error in zip(deliveries, outcomes, strict=True):
                await self._record(conn, delivery, error, self._clock.now())
        return len(deliveries)

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
        self, conn: Conn, delivery: Delivery, error: str | None, now: datetime
    ) -> None:
        attempts = delivery.attempts + 1
        await conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempted_at, ok, detail) "
            "VALUES ($1, $2, $3, $4)",
            delivery.id,
            now,
            error is None,
            error,
        )
        if error is None:
            await conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = $2, sent_at = $3 WHERE id = $1",
                delivery.id,
                attempts,
                now,
            )
            self._sent.labels(delivery.channel).inc()
            self._lateness.labels(delivery.channel).observe(
                max((now - delivery.scheduled_at).total_seconds(), 0.0)
            )
            await self._on_sent(conn, delivery, now)
            return
        final = attempts >= self._max_attempts
        self._failures.labels(delivery.channel, str(final).lower()).inc()
        logger.warning(
            "delivery %s over %s failed (attempt %d): %s",
            delivery.id,
            delivery.channel,
            attempts,
            error,
        )
        if final:
            await conn.execute(
                "UPDATE deliveries SET status = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
                delivery.id,
                attempts,
                error,
            )
            failed = Delivery(
                **{**delivery.__dict__, "attempts": attempts, "last_error": error}
            )
            await self._on_failed(conn, failed, now)
        else:
            await conn.execute(
                "UPDATE deliveries SET attempts = $2, last_error = $3, next_attempt_at = $4 "
                "WHERE id = $1",
                delivery.id,
                attempts,
                error,
                now + self.backoff(attempts),
            )

    async def start(self) -> None:
        await self._wakeup.start()
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._wakeup.stop()
        for channel in self._channels.values():
            await channel.aclose()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                handled = await self.deliver_due()
            except Exception:
                logger.exception("delivery round failed")
                handled = 0
            if handled == self._batch_size:
                continue
            await self._wakeup.wait(self._poll)


def alert_event_callbacks(source: str) -> tuple[DeliveryCallback, DeliveryCallback]:
    """``on_sent`` / ``on_failed`` that publish ``mfc.alert.sent`` / ``mfc.alert.failed``
    through the outbox, in the transaction that records the delivery."""
    from shared import topics
    from shared.events import CloudEvent
    from shared.outbox import enqueue

    async def publish(
        conn: Conn, type_: str, delivery: Delivery, data: dict[str, Any], now: datetime
    ) -> None:
        subject = str(delivery.episode_id or delivery.alert_id)
        event = CloudEvent.new(
            type=type_,
            source=source,
            subject=subject,
            time=now,
            data={
                "alert_id": str(delivery.alert_id),
                "episode_id": str(delivery.episode_id) if delivery.episode_id else None,
                "channel": delivery.channel,
                **data,
            },
        )
        await enqueue(conn, topic=topics.ALERTS, event=event)

    async def on_sent(conn: Conn, delivery: Delivery, now: datetime) -> None:
        await publish(
            conn,
            "mfc.alert.sent",
            delivery,
            {
                "attempts": delivery.attempts + 1,
                "scheduled_at": delivery.scheduled_at.isoformat(),
                "sent_at": now.isoformat(),
            },
            now,
        )

    async def on_failed(conn: Conn, delivery: Delivery, now: datetime) -> None:
        await publish(
            conn,
            "mfc.alert.failed",
            delivery,
            {"attempts": delivery.attempts, "error": delivery.last_error},
            now,
        )

    return on_sent, on_failed


def channels_from(settings: "AlertingSettings") -> dict[str, Channel]:
    """The channels the settings configure: webhook and/or email."""
    channels: dict[str, Channel] = {}
    if settings.webhook_url and settings.webhook_secret is not None:
        channels["webhook"] = WebhookChannel(settings.webhook_secret.get_secret_value())
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
        )
    return channels


async def enqueue_alert(
    conn: Conn,
    *,
    alert_id: UUID,
    episode_id: UUID,
    recipients: list[dict[str, Any]],
    webhook_url: str | None,
    email_enabled: bool,
    payload: dict[str, Any],
    scheduled_at: datetime,
    now: datetime,
) -> None:
    """Fan one alert out: a webhook POST (if configured) and an email to each
    recipient with an address (if SMTP is configured). ``payload`` carries
    ``subject`` and ``text`` for the email."""
    if webhook_url:
        await enqueue_delivery(
            conn,
            alert_id=alert_id,
            episode_id=episode_id,
            channel="webhook",
            address=webhook_url,
            payload=payload,
            scheduled_at=scheduled_at,
            now=now,
        )
    if email_enabled:
        for person in recipients:
            if person.get("email"):
                await enqueue_delivery(
                    conn,
                    alert_id=alert_id,
                    episode_id=episode_id,
                    channel="email",
                    address=person["email"],
                    payload={"subject": payload["subject"], "text": payload["text"]},
                    scheduled_at=scheduled_at,
                    now=now,
                )
