"""Notifier's service layer.

Walking skeleton: episode events are consumed reliably (idempotent, committed after
the database) and counted; the rules arrive with the notifier issue.
"""

import logging

from prometheus_client import CollectorRegistry, Counter

from shared.consumer import Handler, RawMessage
from shared.db import Conn
from shared.events import CloudEvent

logger = logging.getLogger(__name__)


def make_episode_handler(registry: CollectorRegistry) -> Handler:
    seen = Counter(
        "mfc_notifier_episode_events_total",
        "Episode events consumed",
        ["type"],
        registry=registry,
    )

    async def note_episode_event(
        _conn: Conn, event: CloudEvent, _message: RawMessage
    ) -> None:
        seen.labels(event.type).inc()
        logger.info("episode event %s noted", event.type)

    return note_episode_event
