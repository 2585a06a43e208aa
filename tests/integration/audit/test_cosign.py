"""Co-signing against a real witness over HTTP: a second history of the same size,
signed with the log's key, is refused and counted, never taken for another
replica's checkpoint."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from audit.adapters import postgres
from audit.adapters.outside import CheckpointDirectory
from audit.adapters.witness import WitnessClient
from audit.domain import checkpoint as signing
from audit.domain import note
from audit.handlers import AuditMetrics, Checkpointer, Keys
from audit.witness import WitnessSettings, create_app
from shared.clock import SystemClock
from shared.consumer import RawMessage
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent


@asynccontextmanager
async def running_witness(tmp_path: Path, log_key) -> AsyncIterator[str]:
    log_public = tmp_path / "log.pub"
    log_public.write_bytes(signing.public_pem(log_key.public_key()))
    settings = WitnessSettings(
        key_file=tmp_path / "witness.pem",
        generate_key=True,
        state_file=tmp_path / "state.json",
        logs={signing.LOG_NAME: [log_public]},
    )
    # Bound and listening before the server runs: a client that comes early waits
    # in the backlog instead of being refused.
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def a_log(infra, schema: str, key, witness: str, tmp_path: Path, seed: str):
    """A log of three entries whose checkpoint is signed with ``key`` and submitted."""
    async with httpx.AsyncClient() as client:
        vkey = (await client.get(f"{witness}/vkey")).text
    pool = await create_pool(infra.database_url, schema=schema)
    await apply_migrations(pool, service_migrations("audit"))
    message = RawMessage("mfc.prompts.v1", 0, 0, None, b"")
    items = [
        (
            CloudEvent.new(
                type="mfc.prompt.issued",
                source="service/followup",
                subject=str(uuid4()),
                time=datetime.now(UTC),
                data={"seed": seed, "n": n},
            ),
            message,
        )
        for n in range(3)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await postgres.append_batch(conn, items)
    registry = CollectorRegistry()
    metrics = AuditMetrics(registry, SystemClock())
    checkpointer = Checkpointer(
        pool,
        keys=Keys(
            key,
            {signing.key_id(key.public_key()): key.public_key()},
            (note.parse_vkey(vkey),),
        ),
        directory=CheckpointDirectory(tmp_path / schema),
        clock=SystemClock(),
        metrics=metrics,
        interval=3600,
        max_age=3600,
        witness=WitnessClient(witness),
    )
    await checkpointer.issue(force=True)
    return pool, registry


def refusals(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(
        "mfc_audit_witness_failures_total", {"reason": "refused"}
    )


async def test_another_history_of_the_same_size_is_refused(infra, unique, tmp_path):
    key = signing.generate_key()
    async with running_witness(tmp_path, key) as witness:
        first, first_metrics = await a_log(
            infra, f"{unique}_a", key, witness, tmp_path, "one"
        )
        second, second_metrics = await a_log(
            infra, f"{unique}_b", key, witness, tmp_path, "another"
        )
        try:
            async with first.acquire() as conn:
                assert (await postgres.latest_checkpoint(conn)).cosignatures
            assert not refusals(first_metrics)
            async with second.acquire() as conn:
                assert not (await postgres.latest_checkpoint(conn)).cosignatures
            assert refusals(second_metrics) == 1
        finally:
            await first.close()
            await second.close()
