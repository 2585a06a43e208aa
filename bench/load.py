"""End-to-end load: many county systems report children, over HTTP and Kafka.

    .venv/bin/python -m bench.load --rate 300 --duration 60 --runs 3
    .venv/bin/python -m bench.load --rate 100 --duration 60 --runs 3 --name load-100
    .venv/bin/python -m bench.load --rate 100 --duration 60 --runs 3 --baseline cd897c4

Each run starts a fresh stack (embedded PostgreSQL and broker, the four services as
processes, the shipped policy), sends seeded reports at a fixed rate (open loop: a
slow answer does not slow the sender, as with many independent county systems, up to
``IN_FLIGHT`` unanswered reports; past that the sender waits, and the rate achieved
falls below the target), then waits until every report has its episode, its audit
entry and its obligations.

It measures, per run, then as medians over runs:
- the rate achieved, and whether every report arrived (nothing may be missing);
- latency from intake's answer (or, over Kafka, the broker's ack) to the audit
  append of ``mfc.episode.reported`` and to the last obligation opened, p50/p99;
- CPU seconds and peak resident memory of each service;
- timer rows per report: the rows of ``notifier.timers`` and ``followup.timers`` at
  the end over the reports accepted;
- PostgreSQL's work per report, which does not depend on the machine's speed:
  commits (``pg_stat_database``, a worker's idle poll included) and rows inserted,
  updated and deleted in each service's schema (``pg_stat_user_tables``), from
  before the first report to after the last arrived.
Results: ``bench/results/<name>.{json,md,png}``.

``--baseline REF`` runs each run as a child process (``--one-run``), alternating
this tree and the commit REF (``bench.baseline``) with the same seeds: the results
hold both sides' medians and new / baseline for every measure.
"""

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer

from bench import baseline, generator
from bench.harness import (
    DEV_COUNTIES,
    SERVICE_NAMES,
    BenchStack,
    ResourceSampler,
    bench_stack,
    compare,
    compare_table,
    machine,
    measure_table,
    median_run,
    percentile,
    plot_sides,
    profiled,
    top_frames,
    write_results,
)
from intake.deadlines import expected_obligations
from shared import topics
from shared.events import CloudEvent, EpisodeReportedData, EventType
from shared.policy import default_policy_path, load_policy

COUNTIES = DEV_COUNTIES.split(",")
POLICY = load_policy(default_policy_path())  # what the benchmark's stack runs


@dataclass
class Sent:
    case_id: str
    county: str
    via: str  # "http" or "kafka"
    demanded: int  # obligations the policy opens for this report
    accepted_at: float | None = None  # epoch seconds of the answer or the ack
    episode_id: str | None = None
    obligations: int | None = None  # how many intake's answer named
    error: str | None = None


async def _post(
    client: aiohttp.ClientSession, url: str, body: dict[str, Any], sent: Sent
) -> None:
    for _ in range(5):  # a county system retries with the same key
        try:
            async with client.post(
                url, json=body, headers={"Idempotency-Key": sent.case_id}
            ) as answer:
                status = answer.status
                text = await answer.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent.error = repr(exc)
            continue
        if status in (200, 201):
            sent.accepted_at = time.time()
            data = json.loads(text)
            sent.episode_id = data["id"]
            sent.obligations = len(data.get("obligations", []))
            sent.error = None
            return
        sent.error = f"{status}: {text[:200]}"
        if status < 500:
            return


async def _produce(
    producer: AIOKafkaProducer, body: dict[str, Any], sent: Sent
) -> None:
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source=f"county/{sent.county}",
        subject=sent.case_id,
        data=body,
        time=datetime.now(UTC),
    )
    try:
        await producer.send_and_wait(
            topics.INBOUND, event.to_bytes(), key=sent.case_id.encode()
        )
    except Exception as exc:  # recorded; the run then reports it
        sent.error = repr(exc)
        return
    sent.accepted_at = time.time()


def reports(
    rng: random.Random, total: int, kafka_share: float
) -> list[tuple[Sent, dict[str, Any]]]:
    """The reports to send, made before the clock starts: the generator stands for
    county systems on other machines, so it should take as little of this one's
    CPU during the run as it can. Each is learned now, a minute or so before it is
    sent at most."""
    learned = datetime.now(UTC)
    plan = []
    for n in range(total):
        county = rng.choice(COUNTIES)
        body = generator.report(rng, county=county, learned=learned, n=n)
        via = "kafka" if rng.random() < kafka_share else "http"
        demanded = len(
            expected_obligations(POLICY, EpisodeReportedData.model_validate(body))
        )
        plan.append((Sent(body["case_id"], county, via, demanded), body))
    return plan


Points = list[tuple[float, float, float]]
"""Per report: accepted at (epoch s), then latency to audit and to obligations."""

IN_FLIGHT = 64
"""Most reports sent and not yet answered (HTTP) or acknowledged (Kafka)."""


async def drive(
    stack: BenchStack, plan: Sequence[tuple[Sent, dict[str, Any]]], *, rate: float
) -> tuple[list[Sent], float, float]:
    """Send the reports of ``plan``, ``rate`` a second; return what was sent, when
    the sending began (epoch seconds) and the seconds it took."""
    headers = {"Authorization": f"Bearer {stack.county_system_token()}"}
    url = f"{stack.url('intake')}/v1/episodes"
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.infra.bootstrap_servers, acks="all", linger_ms=5
    )
    await producer.start()
    # Past IN_FLIGHT unanswered reports the sender waits, like a county system
    # with a bounded worker pool; without the bound, tens of thousands of
    # requests queued in the HTTP client at 300/s cost the generator more CPU
    # than the whole system under test.
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    sent: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        async with aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(limit=IN_FLIGHT),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as client:
            loop = asyncio.get_running_loop()
            start, started_at = loop.time(), time.time()
            for n, (item, body) in enumerate(plan):
                delay = start + n / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent.append(item)
                coro = (
                    _produce(producer, body, item)
                    if item.via == "kafka"
                    else _post(client, url, body, item)
                )
                await in_flight.acquire()
                task = asyncio.create_task(coro)
                task.add_done_callback(lambda _: in_flight.release())
                tasks.append(task)
            await asyncio.gather(*tasks)
            elapsed = loop.time() - start
    finally:
        await producer.stop()
    return sent, started_at, elapsed


async def arrivals(
    database_url: str, case_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per case: its episode, when its reported event was appended to the audit log,
    and its obligations (how many, when the last opened)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT e.case_id, e.id,
                   (SELECT extract(epoch FROM min(l.appended_at)) FROM audit.log_entries l
                     WHERE l.episode_id = e.id AND l.type = 'mfc.episode.reported')
                     AS audited,
                   (SELECT count(*) FROM notifier.obligations o WHERE o.episode_id = e.id)
                     AS obligations,
                   (SELECT extract(epoch FROM max(o.opened_at)) FROM notifier.obligations o
                     WHERE o.episode_id = e.id) AS opened
              FROM intake.episodes e WHERE e.case_id = ANY($1::text[])
            """,
            list(case_ids),
        )
    finally:
        await conn.close()
    return {
        r["case_id"]: {
            "episode_id": str(r["id"]),
            "audited": float(r["audited"]) if r["audited"] is not None else None,
            "obligations": r["obligations"],
            "opened": float(r["opened"]) if r["opened"] is not None else None,
        }
        for r in rows
    }


async def timer_rows(database_url: str) -> dict[str, int]:
    """Rows in the notifier's and followup's timer tables (fired or not), the
    notifier's pending ones and its open obligations."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM notifier.timers) AS notifier,"
            " (SELECT count(*) FROM notifier.timers WHERE fired_at IS NULL) AS pending,"
            " (SELECT count(*) FROM followup.timers) AS followup,"
            " (SELECT count(*) FROM notifier.obligations WHERE status = 'open') AS open"
        )
    finally:
        await conn.close()
    return dict(row)


SCHEMAS = ("intake", "notifier", "followup", "audit")
STATS_FLUSH_S = 11.0
"""PostgreSQL's backends publish their counts at the end of a transaction at most
once a second, and an idle one within 10 s: wait that long before reading them."""


async def database_activity(database_url: str) -> dict[str, Any]:
    """Commits so far in the stack's database (``pg_stat_database``; a worker's poll
    counts too), rows inserted, updated and deleted in each service's schema
    (``pg_stat_user_tables``) and, where PostgreSQL loads pg_stat_statements (the
    benchmark's own stack does), the calls of each statement: counts that do not
    depend on the machine's speed."""
    conn = await asyncpg.connect(database_url)
    try:
        commits: int = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        rows = await conn.fetch(
            "SELECT schemaname, sum(n_tup_ins)::bigint AS ins, "
            "sum(n_tup_upd)::bigint AS upd, sum(n_tup_del)::bigint AS del "
            "FROM pg_stat_user_tables WHERE schemaname = ANY($1::text[]) "
            "GROUP BY schemaname",
            list(SCHEMAS),
        )
        wal: int = await conn.fetchval("SELECT wal_bytes::bigint FROM pg_stat_wal")
        statements = await statement_calls(conn)
    finally:
        await conn.close()
    counts: dict[str, Any] = {
        "commits": commits,
        "wal_bytes": wal,
        "statements": statements,
    }
    for r in rows:
        for kind in ("ins", "upd", "del"):
            counts[f"{kind}:{r['schemaname']}"] = r[kind]
    return counts


async def statement_calls(
    conn: asyncpg.Connection,
) -> dict[str, tuple[str, int, float, float]]:
    """Each statement's text, calls, milliseconds of execution and bytes of WAL so
    far in this database (BEGIN and COMMIT included); empty where pg_stat_statements
    is not loaded."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch(
            "SELECT queryid::text AS id, min(query) AS query, sum(calls)::bigint AS "
            "calls, sum(total_exec_time)::float8 AS ms, "
            "sum(wal_bytes)::float8 AS wal FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) GROUP BY queryid"
        )
    except asyncpg.PostgresError:
        return {}
    return {r["id"]: (r["query"], r["calls"], r["ms"], r["wal"]) for r in rows}


TOP_STATEMENTS = 15


def per_report(
    before: dict[str, Any], after: dict[str, Any], reports: int
) -> dict[str, Any]:
    """The counts' growth during a run, per report accepted; with statement counts,
    the statements per report and the most frequent ones."""
    per = max(reports, 1)
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "statements"}
    result = {
        "db_commits_per_report": grown["commits"],
        "db_wal_kb_per_report": grown["wal_bytes"] / 1024,
    }
    words = {"ins": "inserted", "upd": "updated", "del": "deleted"}
    for kind, word in words.items():
        result[f"db_rows_{word}_per_report"] = sum(
            grown.get(f"{kind}:{schema}", 0) for schema in SCHEMAS
        )
    for schema in SCHEMAS:
        result[f"db_rows_written_per_report_{schema}"] = sum(
            grown.get(f"{kind}:{schema}", 0) for kind in words
        )
    figures: dict[str, Any] = {k: round(v / per, 2) for k, v in result.items()}
    calls = [
        (n - old[1], ms - old[2], wal - old[3], query)
        for queryid, (query, n, ms, wal) in after["statements"].items()
        for old in [before["statements"].get(queryid, ("", 0, 0.0, 0.0))]
    ]
    if calls:
        figures["db_statements_per_report"] = round(sum(c[0] for c in calls) / per, 1)
        figures["db_statement_ms_per_report"] = round(sum(c[1] for c in calls) / per, 3)

        def top(key: int) -> list[dict[str, Any]]:
            return [
                {
                    "per_report": round(n / per, 2),
                    "ms_per_report": round(ms / per, 4),
                    "wal_kb_per_report": round(wal / per / 1024, 2),
                    "statement": " ".join(q.split())[:160],
                }
                for n, ms, wal, q in sorted(calls, key=lambda c: -c[key])
            ][:TOP_STATEMENTS]

        figures["db_top_statements"] = top(0)
        figures["db_slowest_statements"] = top(1)
        figures["db_most_wal_statements"] = top(2)
    return figures


def complete(sent: Sequence[Sent], found: dict[str, dict[str, Any]]) -> list[str]:
    """Cases not yet whole: no episode, no audit entry, or fewer obligations than the
    policy demands for that report (rules depend on the county, the child's age and
    endangerments; intake's own ``expected_obligations`` says which)."""
    missing = []
    for s in sent:
        got = found.get(s.case_id)
        if got is None or got["audited"] is None or got["obligations"] < s.demanded:
            missing.append(s.case_id)
    return missing


async def settled(
    database_url: str, sent: Sequence[Sent], *, settle: float
) -> dict[str, dict[str, Any]]:
    """What arrived of each case once every one is whole, or ``settle`` seconds
    have passed. Each poll asks only after the cases not yet whole: asking after
    all of them every second cost PostgreSQL a quarter of its CPU in a run, taken
    from the system under measurement while it caught up."""
    deadline = time.monotonic() + settle
    found: dict[str, dict[str, Any]] = {}
    waiting = list(sent)
    while True:
        found.update(await arrivals(database_url, [s.case_id for s in waiting]))
        missing = set(complete(waiting, found))
        waiting = [s for s in waiting if s.case_id in missing]
        if not waiting or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1)


async def run_once(
    stack: BenchStack,
    *,
    rate: float,
    duration: float,
    kafka_share: float,
    seed: int,
    settle: float,
    profile: Path | None = None,
) -> tuple[dict[str, Any], Points]:
    infra = stack.infra_pids()  # empty with a real database and broker
    pids = {**stack.pids(), **infra, "load generator": os.getpid()}
    plan = reports(random.Random(seed), int(rate * duration), kafka_share)
    # (The start-up's last counts may come later and count in: a few dozen rows.)
    activity_before = await database_activity(stack.infra.database_url)
    with ResourceSampler(pids, trees=infra) as sampler, ExitStack() as spies:
        for name in SERVICE_NAMES:
            if profile is not None:
                spies.enter_context(profiled(pids[name], profile / f"{name}.folded"))
        sent, started_at, elapsed = await drive(stack, plan, rate=rate)
        found = await settled(stack.infra.database_url, sent, settle=settle)
    missing = complete(sent, found)
    errors = [s for s in sent if s.error is not None]
    accepted = sum(s.accepted_at is not None for s in sent)
    timers = await timer_rows(stack.infra.database_url)
    await asyncio.sleep(STATS_FLUSH_S)
    activity = per_report(
        activity_before, await database_activity(stack.infra.database_url), accepted
    )
    to_audit, to_opened, points = [], [], []
    last_whole = started_at
    for s in sent:
        got = found.get(s.case_id)
        if s.accepted_at is None or got is None:
            continue
        if got["audited"] is not None:
            to_audit.append(got["audited"] - s.accepted_at)
        if got["opened"] is not None:
            to_opened.append(got["opened"] - s.accepted_at)
        if got["audited"] is not None and got["opened"] is not None:
            last_whole = max(last_whole, got["audited"], got["opened"])
            points.append((s.accepted_at, got["audited"] - s.accepted_at,
                           got["opened"] - s.accepted_at))  # fmt: skip
    result: dict[str, Any] = {
        "target_rate_per_s": rate,
        "duration_s": duration,
        "reports": len(sent),
        "via_kafka": sum(s.via == "kafka" for s in sent),
        "achieved_rate_per_s": round(len(sent) / elapsed, 1),
        # The rate the whole system carried: reports audited with their
        # obligations open, from the first send until the last was.
        "end_to_end_rate_per_s": round(
            len(points) / max(last_whole - started_at, 1e-9), 1
        ),
        "rejected_or_failed": len(errors),
        "incomplete": len(missing),
        "audit_p50_s": round(percentile(to_audit, 50), 3),
        "audit_p99_s": round(percentile(to_audit, 99), 3),
        "obligations_p50_s": round(percentile(to_opened, 50), 3),
        "obligations_p99_s": round(percentile(to_opened, 99), 3),
        "timer_rows": timers["notifier"] + timers["followup"],
        "timer_rows_per_report": round(
            (timers["notifier"] + timers["followup"]) / max(accepted, 1), 2
        ),
        "notifier_timer_rows_per_report": round(
            timers["notifier"] / max(accepted, 1), 2
        ),
        "followup_timer_rows_per_report": round(
            timers["followup"] / max(accepted, 1), 2
        ),
        "open_obligations_per_report": round(timers["open"] / max(accepted, 1), 2),
        "notifier_pending_timers_per_open_obligation": round(
            timers["pending"] / max(timers["open"], 1), 2
        ),
        **activity,
    }
    result["machine_busy_cores"] = sampler.busy_cores
    result["machine_cores"] = sampler.cores
    result["generator_cpu_s"] = sampler.usage["load generator"].cpu_seconds
    for name in SERVICE_NAMES:
        result[f"{name}_cpu_s"] = sampler.usage[name].cpu_seconds
        result[f"{name}_peak_rss_mb"] = sampler.usage[name].peak_rss_mb
    for name in infra:  # the whole process tree: PostgreSQL with its backends
        result[f"{name}_cpu_s"] = sampler.usage[name].cpu_seconds
    delivered = len(sent) - len(missing)
    if delivered:
        busy = sum(sampler.usage[name].cpu_seconds for name in pids)
        result["cpu_ms_per_report"] = round(1000 * busy / delivered, 1)
    if errors:
        result["first_error"] = errors[0].error
    return result, points


def markdown(result: dict[str, Any], runs: int) -> str:
    rows = [
        ("target rate", f"{result['target_rate_per_s']}/s for {result['duration_s']} s"),
        ("reports (of them over Kafka)", f"{result['reports']} ({result['via_kafka']})"),
        ("achieved send rate (answered or acknowledged)",
         f"{result['achieved_rate_per_s']}/s"),
        ("end-to-end rate (audited, obligations open, until the last was)",
         f"{result['end_to_end_rate_per_s']}/s"),
        ("rejected or failed", result["rejected_or_failed"]),
        ("incomplete (no episode, audit entry or obligations)", result["incomplete"]),
        ("answer to audit append, p50 / p99",
         f"{result['audit_p50_s']} s / {result['audit_p99_s']} s"),
        ("answer to obligations opened, p50 / p99",
         f"{result['obligations_p50_s']} s / {result['obligations_p99_s']} s"),
    ]  # fmt: skip
    rows.append(
        ("whole machine: cores busy on average (all processes)",
         f"{result['machine_busy_cores']} of {result['machine_cores']}"),
    )  # fmt: skip
    rows.append(("load generator: CPU", f"{result['generator_cpu_s']} s"))
    rows.extend(
        (f"{name} (all its processes): CPU", f"{result[f'{name}_cpu_s']} s")
        for name in ("postgres", "broker")
        if f"{name}_cpu_s" in result
    )
    rows.append(("timer rows per report (notifier and followup, at the end)",
                 f"{result['timer_rows_per_report']} ({result['timer_rows']} rows)"))  # fmt: skip
    if "open_obligations_per_report" in result:
        rows.append(("notifier: timer rows and open obligations per report; pending "
                     "timers per open obligation",
                     f"{result['notifier_timer_rows_per_report']}; "
                     f"{result['open_obligations_per_report']}; "
                     f"{result['notifier_pending_timers_per_open_obligation']}"))  # fmt: skip
    if "db_commits_per_report" in result:
        rows.append(("PostgreSQL per report: commits; rows inserted / updated / deleted",
                     f"{result['db_commits_per_report']}; "
                     f"{result['db_rows_inserted_per_report']} / "
                     f"{result['db_rows_updated_per_report']} / "
                     f"{result['db_rows_deleted_per_report']}"))  # fmt: skip
        if "db_statements_per_report" in result:
            rows.append(("PostgreSQL statements per report (pg_stat_statements)",
                         str(result["db_statements_per_report"])))  # fmt: skip
        rows.append(("rows written per report in each schema: "
                     + " / ".join(SCHEMAS),
                     " / ".join(str(result[f"db_rows_written_per_report_{s}"])
                                for s in SCHEMAS)))  # fmt: skip
    if "cpu_ms_per_report" in result:
        rows.append(("CPU per report, all processes above",
                     f"{result['cpu_ms_per_report']} ms"))  # fmt: skip
    rows.extend(
        (f"{name}: CPU, peak memory",
         f"{result[f'{name}_cpu_s']} s, {result[f'{name}_peak_rss_mb']} MB")
        for name in SERVICE_NAMES
    )  # fmt: skip
    return measure_table(rows, runs=runs, result=result)


def profile_summary(directory: Path, title: str, result: dict[str, Any]) -> str:
    """Each service's profile in short: where its CPU went, by function."""
    lines = [f"py-spy, {title}, {result['machine']}, {result['date_of_run']}.", ""]
    for name in SERVICE_NAMES:
        top = top_frames(directory / f"{name}.folded")
        lines += [
            f"## {name}: {result[f'{name}_cpu_s']} s of CPU, {top['samples']} samples",
            "",
            "| self | function (on top of the stack) | total | our function (anywhere) |",
            "|---|---|---|---|",
            *(
                f"| {own[1]:.1%} | `{own[0]}` | {anywhere[1]:.1%} | `{anywhere[0]}` |"
                for own, anywhere in zip(top["self"], top["total"], strict=False)
            ),
            "",
        ]
    return "\n".join(lines)


def one_run(args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], Points]:
    with bench_stack() as stack:
        return asyncio.run(
            run_once(
                stack,
                rate=args.rate,
                duration=args.duration,
                kafka_share=args.kafka_share,
                seed=seed,
                settle=args.settle,
                profile=args.profile,
            )
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="reports per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kafka-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=120,
                        help="seconds to wait for the last reports to arrive")  # fmt: skip
    parser.add_argument("--name", default=None, help="results file name")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record each service with py-spy while the load runs "
                        "(DIR/<service>.folded, a summary in DIR/top-frames.md)")  # fmt: skip
    baseline.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.one_run:
        baseline.emit(one_run(args, args.seed)[0])
        return {}
    settings = {"runs": args.runs, "machine": machine(),
                "date_of_run": datetime.now(UTC).date().isoformat()}  # fmt: skip
    title = f"{args.rate:g} reports/s for {args.duration:g} s"
    if args.baseline:
        sides = baseline.alternate(
            "bench.load",
            lambda n: [*baseline.child_argv(args, drop=["seed"]),
                       "--seed", str(args.seed + n)],
            baseline=args.baseline,
            new=args.new,
            runs=args.runs,
        )  # fmt: skip
        summary = {
            **settings,
            "new_code": sides.new.label,
            "baseline_code": sides.baseline.label,
            **compare(sides.new_runs, sides.baseline_runs),
        }
        text = compare_table(summary)
        keys = ["audit_p50_s", "audit_p99_s", "obligations_p50_s", "obligations_p99_s"]
        plot = plot_sides(summary, keys, ylabel="latency (s)", title=title)
    else:
        runs: list[dict[str, Any]] = []
        points: Points = []
        for n in range(args.runs):
            result, points = one_run(args, args.seed + n)
            print(json.dumps(result))  # noqa: T201
            runs.append(result)
        summary = {**median_run(runs), **settings, "each_run": runs}
        text = markdown(summary, len(runs))
        plot = latency_plot(points, title)
    if not args.no_write:
        write_results(args.name or f"load-{int(args.rate)}", summary, text, plot)
    if args.profile and not args.baseline:
        (args.profile / "top-frames.md").write_text(
            profile_summary(args.profile, title, summary)
        )
    print(text)  # noqa: T201
    return summary


def latency_plot(points: Points, title: str) -> Any:
    def plot(figure: Any) -> None:
        axis = figure.add_subplot(1, 1, 1)
        if points:
            t0 = points[0][0]
            axis.scatter([p[0] - t0 for p in points], [p[1] for p in points],
                         s=4, label="answer to audit append")  # fmt: skip
            axis.scatter([p[0] - t0 for p in points], [p[2] for p in points],
                         s=4, label="answer to obligations opened")  # fmt: skip
        axis.set_xlabel("seconds into the last run")
        axis.set_ylabel("latency (s)")
        axis.set_title(title)
        axis.legend()

    return plot


if __name__ == "__main__":
    main()
