"""Audit benchmark: append rate and whole-log verification time on real PostgreSQL.

    .venv/bin/python -m bench.audit_bench --entries 1000000 --runs 3   # embedded PostgreSQL
    .venv/bin/python -m bench.audit_bench --database-url postgresql://... --entries 100000
    .venv/bin/python -m bench.audit_bench --entries 1000000 --runs 3 --baseline cd897c4

Appends go through the service's own adapter (``append_batch``: leaf hashes, tree
nodes, one transaction per batch), without Kafka, so the figure is the database side
of the consumer. Verification is the service's ``verify_log``: every leaf rehashed from
its content, the tree rebuilt, every checkpoint checked. Each run uses a fresh schema;
figures are medians over runs. Results are printed and written to
``bench/results/audit.{json,md}``. ``--baseline REF`` alternates runs of this tree
and of the commit REF, each in a child process (``bench.baseline``), and reports
both and new / baseline.
"""

import argparse
import asyncio
import json
import os
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
from bench import baseline
from bench.harness import (
    compare,
    compare_table,
    database,
    machine,
    median_run,
    write_results,
)
from shared.clock import SystemClock
from shared.consumer import RawMessage
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent


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
    append_seconds = 0.0
    for first in range(0, entries, batch):
        # Making the events is the benchmark's work, not the log's: off the clock.
        items = [
            (synthetic_event(n), message)
            for n in range(first, min(first + batch, entries))
        ]
        started = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            await postgres.append_batch(conn, items)
        append_seconds += time.perf_counter() - started

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
    # The next run starts on an equal footing: no million rows left behind.
    await pool.execute(f"DROP SCHEMA {schema} CASCADE")
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
    }


def markdown(summary: dict[str, Any]) -> str:
    return (
        f"Median of {summary['runs']} runs on {summary['machine']}, "
        f"{summary['date_of_run']}.\n\n"
        "| entries | append rate /s | verify s | verify rate /s |\n"
        "|---|---|---|---|\n"
        f"| {summary['entries']} | {summary['append_rate_per_s']:.0f} | "
        f"{summary['verify_seconds']} | {summary['verify_rate_per_s']:.0f} |\n"
    )


def measure(args: argparse.Namespace, runs: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with database(args.database_url, work) as url:
            for n in range(runs):
                results.append(
                    asyncio.run(run(url, args.entries, args.batch, work / str(n)))
                )
                if not args.one_run:
                    print(json.dumps(results[-1]))  # noqa: T201
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    baseline.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.one_run:
        baseline.emit(measure(args, 1)[0])
        return {}
    settings = {"runs": args.runs, "machine": machine(),
                "date_of_run": datetime.now(UTC).date().isoformat()}  # fmt: skip
    if args.baseline:
        sides = baseline.alternate(
            "bench.audit_bench",
            lambda _: baseline.child_argv(args),
            baseline=args.baseline,
            new=args.new,
            runs=args.runs,
        )
        summary = {
            **settings,
            "new_code": sides.new.label,
            "baseline_code": sides.baseline.label,
            **compare(sides.new_runs, sides.baseline_runs),
        }
        text = compare_table(summary)
    else:
        runs = measure(args, args.runs)
        summary = {**median_run(runs), **settings, "each_run": runs}
        text = markdown(summary)
    if not args.no_write:
        write_results("audit", summary, text)
    print(text)  # noqa: T201
    return summary


if __name__ == "__main__":
    main()
