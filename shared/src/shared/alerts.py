"""One alert pipeline for every service that alerts people (the notifier and followup).

A service's domain composes an ``Alert`` (who, what, the wording); here it becomes
deliveries (a webhook POST if one is configured, an email to each recipient with an
address if SMTP is), queued as rows in the transaction that decided the alert. The
delivery worker (``shared.delivery``) sends them and, in the transaction that records
each outcome, publishes ``mfc.alert.sent`` or ``mfc.alert.failed`` (``alert_events``).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db import Conn
from shared.published import AlertEvent, AlertFailed, AlertSent, Outgoing, outgoing

NOTIFY_CHANNEL = "mfc_deliveries"


@dataclass(frozen=True)
class Recipient:
    """A person an alert goes to, as the policy resolved them."""

    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Alert:
    """One alert, composed by a service's domain. ``details`` is what the service
    adds to the webhook body (the obligation or the prompt)."""

    id: UUID
    episode_id: UUID | None
    """None for an alert about no one child (a county's feed fallen silent)."""
    child: str | None
    """Initials only: alerts never carry a child's name."""
    reason: str
    subject: str
    text: str
    episode_url: str | None
    recipients: tuple[Recipient, ...]
    scheduled_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    def webhook_body(self) -> dict[str, Any]:
        episode = {
            "episode_id": str(self.episode_id),
            "child": self.child,
            "episode_url": self.episode_url,
        }
        return {
            "alert_id": str(self.id),
            **(episode if self.episode_id is not None else {}),
            "reason": self.reason,
            "recipients": [{"id": r.id, "name": r.name} for r in self.recipients],
            "subject": self.subject,
            "text": self.text,
            **self.details,
        }


def dedupe_key(subject_id: UUID, step_key: str) -> str:
    """One alert per subject and step, however often the step is fired."""
    return f"{subject_id}:{step_key}"


@dataclass(frozen=True)
class Route:
    """Where alerts go, from the settings."""

    webhook_url: str | None
    email_enabled: bool


@dataclass(frozen=True)
class Delivery:
    """One send of one alert over one channel to one address (a row to queue)."""

    alert_id: UUID
    episode_id: UUID | None
    channel: str
    address: str
    payload: Mapping[str, Any]
    scheduled_at: datetime


def deliveries(alert: Alert, route: Route) -> list[Delivery]:
    """The sends an alert fans out to: the webhook, and an email to each recipient
    with an address."""
    sends = []
    if route.webhook_url:
        sends.append(
            Delivery(
                alert.id,
                alert.episode_id,
                "webhook",
                route.webhook_url,
                alert.webhook_body(),
                alert.scheduled_at,
            )
        )
    if route.email_enabled:
        email = {"subject": alert.subject, "text": alert.text}
        sends += [
            Delivery(
                alert.id, alert.episode_id, "email", r.email, email, alert.scheduled_at
            )
            for r in alert.recipients
            if r.email
        ]
    return sends


_ENQUEUE = """
WITH added AS (
    INSERT INTO deliveries (alert_id, episode_id, channel, address, payload,
                            next_attempt_at, scheduled_at)
    SELECT a, e, c, d, p::jsonb, $7, s
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                $6::timestamptz[]) AS u(a, e, c, d, p, s)
    ON CONFLICT (alert_id, channel, address) DO NOTHING
    RETURNING 1
)
SELECT pg_notify($8, current_schema()) FROM added LIMIT 1
"""


async def enqueue_alerts(
    conn: Conn, alerts: Sequence[Alert], route: Route, now: datetime
) -> None:
    """Queue every delivery of ``alerts`` in one statement (waking the delivery
    workers at commit). A delivery already queued is not queued twice."""
    rows = [d for alert in alerts for d in deliveries(alert, route)]
    if not rows:
        return
    await conn.execute(
        _ENQUEUE,
        [d.alert_id for d in rows],
        [d.episode_id for d in rows],
        [d.channel for d in rows],
        [d.address for d in rows],
        [json.dumps(d.payload) for d in rows],
        [d.scheduled_at for d in rows],
        now,
        NOTIFY_CHANNEL,
    )


def sent_event(
    source: str,
    *,
    alert_id: UUID,
    episode_id: UUID | None,
    channel: str,
    attempts: int,
    scheduled_at: datetime,
    sent_at: datetime,
) -> Outgoing:
    """``mfc.alert.sent``: a page or email reached its channel."""
    data = AlertSent(
        alert_id=alert_id,
        episode_id=episode_id,
        channel=channel,
        attempts=attempts,
        scheduled_at=scheduled_at,
        sent_at=sent_at,
    )
    return outgoing(
        AlertEvent.SENT,
        data,
        source=source,
        subject=episode_id or alert_id,
        time=sent_at,
    )


def failed_event(
    source: str,
    *,
    alert_id: UUID,
    episode_id: UUID | None,
    channel: str,
    attempts: int,
    error: str | None,
    now: datetime,
) -> Outgoing:
    """``mfc.alert.failed``: a delivery gave up after its retries."""
    data = AlertFailed(
        alert_id=alert_id,
        episode_id=episode_id,
        channel=channel,
        attempts=attempts,
        error=error,
    )
    return outgoing(
        AlertEvent.FAILED, data, source=source, subject=episode_id or alert_id, time=now
    )
