"""Audit's Kafka side: every ``mfc.*`` topic, by pattern, so new topics need no code.
Events arrive in batches and are appended one transaction per batch."""

from audit.handlers import AuditMetrics, make_append_handler
from shared import topics
from shared.runtime import ServiceRuntime


def register(runtime: ServiceRuntime, metrics: AuditMetrics) -> None:
    runtime.subscribe_batch(
        "audit-log",
        make_append_handler(metrics),
        pattern=topics.AUDITED_PATTERN,
    )
