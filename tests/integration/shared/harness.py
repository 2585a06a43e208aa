"""A throwaway service on real infrastructure for testing the shared plumbing."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from devtools.devstack import Infrastructure
from shared.clock import SystemClock
from shared.config import ServiceSettings
from shared.consumer import Handler
from shared.db import Migration, load_migrations
from shared.runtime import ServiceRuntime

APPLIED_TABLE = Migration(
    "test",
    1,
    "0001_applied.sql",
    "CREATE TABLE applied (event_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
)


class PlumbingSettings(ServiceSettings):
    http_port: int = 0
    consumer_group: str = "plumbing"


def settings_for(
    infra: Infrastructure, group: str, **overrides: Any
) -> PlumbingSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": infra.bootstrap_servers,
        "database_url": infra.database_url,
        "consumer_group": group,
        "handler_initial_backoff": timedelta(milliseconds=100),
        "outbox_poll_interval": timedelta(milliseconds=200),
        "shutdown_grace": timedelta(seconds=1),
        **overrides,
    }
    return PlumbingSettings(**values)


@asynccontextmanager
async def running_service(
    infra: Infrastructure,
    *,
    schema: str,
    topic: str,
    handler: Handler,
    **overrides: Any,
) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(
        "plumbing",
        settings_for(infra, group=schema, **overrides),
        SystemClock(),
        schema=schema,
        migrations=[*load_migrations("shared", "shared.migrations"), APPLIED_TABLE],
    )
    runtime.subscribe(f"{schema}-consumer", handler, topic)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
