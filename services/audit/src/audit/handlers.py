"""Audit's service layer: append each consumed event to the log."""

from prometheus_client import CollectorRegistry, Counter

from audit.adapters import postgres
from shared.consumer import Handler, RawMessage
from shared.db import Conn
from shared.events import CloudEvent


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.appended = Counter(
            "mfc_audit_entries_appended_total",
            "Entries appended to the log",
            ["topic"],
            registry=registry,
        )


def make_append_handler(metrics: AuditMetrics) -> Handler:
    async def append_event(conn: Conn, event: CloudEvent, message: RawMessage) -> None:
        if await postgres.append(conn, event, message):
            metrics.appended.labels(message.topic).inc()

    return append_event
