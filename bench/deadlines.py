"""Deadline precision: many deadlines due in a short window, fired by our durable
timers and, side by side on the same PostgreSQL, by what teams use instead.

    .venv/bin/python -m bench.deadlines --deadlines 100000 --window 120 --runs 3
    .venv/bin/python -m bench.deadlines --deadlines 20000 --window 60 --runs 3 \
        --name deadlines-20k

Each scheduler runs in its own process, so its CPU time and peak memory are its own:
- ``mfc``: ``shared.timers.TimerScheduler``, the notifier's and followup's timers
  (claim due rows with SKIP LOCKED, fire in the claiming transaction), at the
  notifier's default poll interval and batch size;
- ``apscheduler``: APScheduler 3 with its SQLAlchemy job store (psycopg 3), asyncio
  scheduler, default executor; ``misfire_grace_time=None`` so that a late job still
  runs (with the default of one second a late job is skipped, which here would read
  as missed);
- ``procrastinate``: scheduled jobs (``schedule_at``), one worker at default
  settings.

Every deadline's work is the same: one INSERT into ``fired`` (deadline, due,
``clock_timestamp()``), in the scheduler's own transaction where it has one. From
that table come: deadlines missed, fired twice, and lateness (fired minus due)
p50/p99/max. Deadlines are due from ``--lead`` seconds after the scheduler process
starts, evenly over ``--window`` seconds; ``setup_s`` says how long scheduling them
took (lateness counts from the due time regardless).
Results: ``bench/results/deadlines.{json,md,png}``.
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from bench.harness import (
    database,
    machine,
    median_run,
    percentile,
    write_results,
)

SCHEDULERS = ("mfc", "apscheduler", "procrastinate")
FIRED_TABLE = """
CREATE TABLE IF NOT EXISTS fired (
    deadline integer NOT NULL,
    due timestamptz NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT clock_timestamp()
)"""
INSERT_FIRED = "INSERT INTO fired (deadline, due) VALUES ($1, $2)"


def due_times(count: int, start: datetime, window: float) -> list[datetime]:
    step = window / max(count - 1, 1)
    return [start + timedelta(seconds=i * step) for i in range(count)]


# --- the schedulers, each run as ``python -m bench.deadlines --child NAME`` ---------


async def child_mfc(url: str, schema: str, dues: list[datetime], until: float) -> None:
    from prometheus_client import CollectorRegistry

    from shared.clock import SystemClock
    from shared.db import Conn, apply_migrations, create_pool, load_migrations
    from shared.timers import Timer, TimerScheduler

    pool = await create_pool(url, schema=schema, max_size=4)
    await apply_migrations(pool, load_migrations("timers", "shared.timer_migrations"))
    async with pool.acquire() as conn:
        await conn.execute(FIRED_TABLE)
        await conn.copy_records_to_table(
            "timers",
            columns=["subject_id", "step_key", "kind", "fire_at"],
            records=[(UUID(int=i), "due", "deadline", d) for i, d in enumerate(dues)],
        )
    ready()

    async def fire(conn: Conn, timer: Timer, _now: datetime) -> None:
        await conn.execute(INSERT_FIRED, timer.subject_id.int, timer.fire_at)

    scheduler = TimerScheduler(
        pool, fire, clock=SystemClock(), registry=CollectorRegistry()
    )
    await scheduler.start()
    await run_until_fired(pool.fetchval, len(dues), until)
    await scheduler.stop()
    await pool.close()


async def child_apscheduler(
    url: str, schema: str, dues: list[datetime], until: float
) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from sqlalchemy import create_engine

    pool = await asyncpg.create_pool(url, server_settings={"search_path": schema})
    await pool.execute(FIRED_TABLE)
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"options": f"-c search_path={schema}"},
    )
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        job_defaults={"misfire_grace_time": None},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    for i, due in enumerate(dues):
        scheduler.add_job(
            fire_apscheduler, "date", run_date=due, args=[i, due], id=str(i)
        )
    ready()
    global FIRE_POOL  # APScheduler stores jobs as a module-level function
    FIRE_POOL = pool
    scheduler.resume()
    await run_until_fired(pool.fetchval, len(dues), until)
    scheduler.shutdown(wait=False)
    await pool.close()


FIRE_POOL: Any = None


async def fire_apscheduler(deadline: int, due: datetime) -> None:
    await FIRE_POOL.execute(INSERT_FIRED, deadline, due)


async def child_procrastinate(
    url: str, schema: str, dues: list[datetime], until: float
) -> None:
    import procrastinate

    pool = await asyncpg.create_pool(url, server_settings={"search_path": schema})
    await pool.execute(FIRED_TABLE)
    connector = procrastinate.PsycopgConnector(
        conninfo=url, kwargs={"options": f"-c search_path={schema}"}
    )
    app = procrastinate.App(connector=connector)

    @app.task(name="deadline")
    async def deadline(number: int, due: str) -> None:
        await pool.execute(INSERT_FIRED, number, datetime.fromisoformat(due))

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for first in range(0, len(dues), 1000):
            await asyncio.gather(
                *(
                    deadline.configure(schedule_at=due).defer_async(
                        number=i, due=due.isoformat()
                    )
                    for i, due in enumerate(dues[first : first + 1000], start=first)
                )
            )
        ready()
        worker = asyncio.create_task(
            app.run_worker_async(install_signal_handlers=False)
        )
        await run_until_fired(pool.fetchval, len(dues), until)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    await pool.close()


def ready() -> None:
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line


def report_usage() -> None:
    """The child's own CPU time and peak memory, exact, as its last line."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }
    print(json.dumps(figures), flush=True)  # noqa: T201


async def run_until_fired(fetchval: Any, count: int, until: float) -> None:
    while time.time() < until:
        if await fetchval("SELECT count(DISTINCT deadline) FROM fired") >= count:
            await asyncio.sleep(1)  # a duplicate, if any, shows now
            return
        await asyncio.sleep(0.5)


CHILDREN = {
    "mfc": child_mfc,
    "apscheduler": child_apscheduler,
    "procrastinate": child_procrastinate,
}


# --- the parent: one process per scheduler and run --------------------------------


async def measure(url: str, schema: str, count: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS fired, count(DISTINCT deadline) AS distinct_fired FROM fired"
        )
        lateness = [
            r[0]
            for r in await conn.fetch(
                "SELECT extract(epoch FROM fired_at - due)::float8 FROM fired"
            )
        ]
    finally:
        await conn.close()
    return {
        "missed": count - row["distinct_fired"],
        "fired_twice": row["fired"] - row["distinct_fired"],
        "lateness_p50_s": round(percentile(lateness, 50), 3),
        "lateness_p99_s": round(percentile(lateness, 99), 3),
        "lateness_max_s": round(max(lateness, default=float("nan")), 3),
    }


def run_one(
    name: str, url: str, *, count: int, window: float, lead: float
) -> dict[str, Any]:
    schema = f"bench_{name}_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    asyncio.run(_create_schema(url, schema))
    started = time.time()
    until = started + lead + window + 600
    command = [sys.executable, "-m", "bench.deadlines", "--child", name,
               "--database-url", url, "--schema", schema, "--deadlines", str(count),
               "--window", str(window), "--start", str(started + lead),
               "--until", str(until)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.wait()
        raise RuntimeError(f"{name} did not start: {line!r}")
    setup = time.time() - started
    usage = child.stdout.read().strip().splitlines()
    if child.wait() != 0 or not usage:
        raise RuntimeError(f"{name} exited with {child.returncode}")
    result = asyncio.run(measure(url, schema, count))
    # CPU and peak memory of the whole process, setup included.
    result.update(scheduler=name, setup_s=round(setup, 1), **json.loads(usage[-1]))
    return result


async def _create_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()


def run_all(
    url: str, *, schedulers: list[str], count: int, window: float, lead: float,
    runs: int,
) -> dict[str, Any]:  # fmt: skip
    results: dict[str, Any] = {}
    for name in schedulers:
        each = [
            run_one(name, url, count=count, window=window, lead=lead)
            for _ in range(runs)
        ]
        for r in each:
            print(json.dumps(r))  # noqa: T201
        results[name] = {**median_run(each), "each_run": each}
    return results


def markdown(summary: dict[str, Any]) -> str:
    base = summary["schedulers"].get("mfc")
    lines = [
        f"{summary['deadlines']} deadlines due within {summary['window_s']} s; medians "
        f"of {summary['runs']} run(s) on {summary['machine']}, {summary['date_of_run']}.",
        "",
        "| scheduler | missed | fired twice | lateness p50 | p99 | max | CPU s | "
        "peak memory | setup s | p99 vs mfc | CPU vs mfc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary["schedulers"].items():
        ratio_p99 = ratio_cpu = "1"
        if base is not None and name != "mfc":
            ratio_p99 = _ratio(r["lateness_p99_s"], base["lateness_p99_s"])
            ratio_cpu = _ratio(r["cpu_s"], base["cpu_s"])
        lines.append(
            f"| {name} | {r['missed']} | {r['fired_twice']} | {r['lateness_p50_s']} s "
            f"| {r['lateness_p99_s']} s | {r['lateness_max_s']} s | {r['cpu_s']} | "
            f"{r['peak_rss_mb']} MB | {r['setup_s']} | {ratio_p99} | {ratio_cpu} |"
        )
    return "\n".join(lines) + "\n"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2g}x" if base > 0 else "n/a"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadlines", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=120)
    parser.add_argument("--lead", type=float, default=120,
                        help="seconds from start to the first deadline")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--name", default="deadlines",
                        help="results as bench/results/NAME.*")  # fmt: skip
    # A scheduler's own process:
    parser.add_argument("--child", choices=SCHEDULERS, help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--until", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        start = datetime.fromtimestamp(args.start, UTC)
        dues = due_times(args.deadlines, start, args.window)
        asyncio.run(
            CHILDREN[args.child](args.database_url, args.schema, dues, args.until)
        )
        report_usage()
        return {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.database_url, Path(tmp)) as url,
    ):
        results = run_all(
            url,
            schedulers=args.schedulers.split(","),
            count=args.deadlines,
            window=args.window,
            lead=args.lead,
            runs=args.runs,
        )
    summary = {
        "deadlines": args.deadlines,
        "window_s": args.window,
        "runs": args.runs,
        "machine": machine(),
        "date_of_run": datetime.now(UTC).date().isoformat(),
        "schedulers": results,
    }
    if not args.no_write:

        def plot(figure: Any) -> None:
            axis = figure.add_subplot(1, 1, 1)
            names = list(results)
            axis.bar([f"{n}\np50" for n in names],
                     [results[n]["lateness_p50_s"] for n in names])  # fmt: skip
            axis.bar([f"{n}\np99" for n in names],
                     [results[n]["lateness_p99_s"] for n in names])  # fmt: skip
            axis.set_ylabel("lateness, fired minus due (s)")
            axis.set_yscale("log")
            axis.set_title(f"{args.deadlines} deadlines within {args.window:g} s")

        write_results(args.name, summary, markdown(summary), plot)
    print(markdown(summary))  # noqa: T201
    return summary


if __name__ == "__main__":
    main()
