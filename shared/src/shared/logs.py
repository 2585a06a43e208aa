"""Structured JSON logs. Every line carries the service name and, while a message
is handled, its event id and episode id (from context variables)."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)
episode_id_var: ContextVar[str | None] = ContextVar("episode_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.event_id = event_id_var.get()
        record.episode_id = episode_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON lines to stderr; replaces any handler set before."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{service}{event_id}{episode_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream's module logger writes coloured text through a handler of its own
    # and does not propagate; route it through ours.
    faststream_logger = logging.getLogger("faststream")
    faststream_logger.handlers.clear()
    faststream_logger.propagate = True
    # Library chatter (per-request connection logs) drowns the lines that matter.
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def log_context(*, event_id: str | None, episode_id: str | None) -> Iterator[None]:
    event_token = event_id_var.set(event_id)
    episode_token = episode_id_var.set(episode_id)
    try:
        yield
    finally:
        event_id_var.reset(event_token)
        episode_id_var.reset(episode_token)
