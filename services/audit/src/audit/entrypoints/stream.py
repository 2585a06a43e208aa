"""Audit's Kafka side: every ``mfc.*`` topic, by pattern, so new topics need no code."""

from audit.handlers import AuditMetrics, make_append_handler
from shared import topics
from shared.runtime import ServiceRuntime


def register(runtime: ServiceRuntime, metrics: AuditMetrics) -> None:
    runtime.subscribe(
        "audit-log", make_append_handler(metrics), pattern=topics.AUDITED_PATTERN
    )
