"""Audit's Kafka side: every ``mfc.*`` topic, by pattern, so new topics need no code.
Events arrive in batches and are appended one transaction per batch.

A message on ``mfc.inbound.v1`` that is no CloudEvent (not JSON, or over the size
bound) is intake's to dead-letter: the trail records intake's dead letter, which
keeps the message's bytes, and only that (before, audit dead-lettered it as well,
and the trail told of one message twice). Unreadable messages on the topics our
own services write are still dead-lettered here: nobody else reads all of them."""

from audit.handlers import AuditMetrics, make_append_handler
from shared import topics
from shared.runtime import ServiceRuntime


def register(runtime: ServiceRuntime, metrics: AuditMetrics) -> None:
    runtime.subscribe_batch(
        "audit-log",
        make_append_handler(metrics),
        pattern=topics.AUDITED_PATTERN,
        unreadable_left_to={topics.INBOUND: "intake-inbound"},
    )
