"""Deadline precision through the notifier: many open obligations fall due in a short
window, and each must page on-call the moment it is missed.

    .venv/bin/python -m bench.escalations --obligations 100000 --window 120 --runs 3
    .venv/bin/python -m bench.escalations --obligations 100000 --window 120 --runs 3 \
        --baseline cd897c4
    .venv/bin/python -m bench.escalations --idle 1000000 --idle-seconds 120 --runs 3 \
        --baseline cd897c4

Where ``bench.deadlines`` measures the timer scheduler alone with a one-INSERT step,
this runs the notifier service as deployed (a fresh local stack: embedded PostgreSQL
and broker, the four services as processes) with its webhook channel pointed at a
receiver in this process. Before the clock starts it writes ``--obligations`` open
obligations straight into the notifier's tables with plain SQL (``COPY``), as the
notifier opens them (the shipped policy's rules and chains, one episode each), each
with its breach step due evenly within ``--window`` seconds from ``--lead`` seconds
on. Nobody records a
notice, so at each due time the notifier fires the breach: the alert, its delivery
row, the ``mfc.obligation.breached`` event through its outbox; its delivery worker
POSTs the signed alert to the receiver.

It measures, per run, then as medians over runs:
- obligations whose breach never reached the receiver (missed), and alerts received
  more than once (twice);
- lateness, received minus due, p50/p99/max;
- CPU seconds and peak memory of the notifier, and the CPU of PostgreSQL.
Results: ``bench/results/escalations.{json,md,png}``.

``--idle N`` measures the notifier at rest instead: N open obligations whose breach
steps fall due over a day from an hour on (none while measured), then the
notifier's CPU time and resident memory every 5 s for ``--idle-seconds``: CPU
seconds per minute, memory at the start and the end (flat: no growth), and
PostgreSQL's CPU per minute. Results: ``bench/results/escalations-idle.*``.

``--profile FILE`` samples the notifier with py-spy from the first due time to the
end (folded stacks: one line per stack with its sample count, which flame-graph
tools such as speedscope read).

``--baseline REF`` runs each run as a child process (``--one-run``), alternating
this tree and the commit REF (``bench.baseline``): the results hold both sides'
medians and new / baseline for every measure.
"""

import argparse
import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from aiohttp import web

from bench import baseline
from bench.harness import (
    DEV_COUNTIES,
    ResourceSampler,
    bench_stack,
    compare,
    compare_table,
    cpu_and_rss,
    free_port,
    machine,
    measure_table,
    median_run,
    percentile,
    plot_sides,
    profiled,
    write_results,
)
from shared.policy import default_policy_path, load_policy

POLICY = load_policy(default_policy_path())  # what the benchmark's stack runs
COUNTIES = DEV_COUNTIES.split(",")
# The receiver does not check it; base64 of "bench-only-webhook-signing-key!!".
WEBHOOK_SECRET = "whsec_YmVuY2gtb25seS13ZWJob29rLXNpZ25pbmcta2V5ISE="
CHUNK = 5_000
EPISODE_COLUMNS = ("episode_id", "county_code", "child_initials", "caseworker",
                   "supervisor", "facts", "times")  # fmt: skip
OBLIGATION_COLUMNS = ("id", "episode_id", "county_code", "jurisdiction", "kind",
                      "title", "opened_at", "clock_start", "due_at", "policy_digest",
                      "rule", "chain", "snooze", "breach_repeat")  # fmt: skip
TIMER_COLUMNS = ("subject_id", "step_key", "kind", "fire_at", "payload")
IDLE_LEAD = timedelta(hours=1)  # the first idle obligation's breach
IDLE_SAMPLE_S = 5.0


class Receiver:
    """An HTTP server on 127.0.0.1 standing for on-call's paging system: it answers
    every alert 204 and notes when each alert id arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: dict[str, list[float]] = defaultdict(list)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    async def _alert(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received[body["alert_id"]].append(time.time())
        return web.Response(status=204)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/alerts", self._alert)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> "Receiver":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def obligation_rows(
    count: int, first_due: datetime, window: float, opened_at: datetime
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(episode row, obligation row) pairs as the notifier writes them: the shipped
    policy's rules in turn, over the development counties; due evenly in the
    window. JSON columns as JSON text, so plain asyncpg writes them."""
    defaults = POLICY.document.defaults
    frozen: dict[str, tuple[str, str]] = {}  # rule id -> its rule and chain
    for n in range(count):
        county = COUNTIES[n % len(COUNTIES)]
        rules = POLICY.obligations_for(county)
        rule = rules[n % len(rules)]
        episode_id = uuid4()
        if rule.id not in frozen:
            frozen[rule.id] = (json.dumps(rule.model_dump(mode="json")),
                json.dumps(POLICY.chain(rule.chain).model_dump(mode="json")))  # fmt: skip
        staff = {
            role: json.dumps({"id": f"{role}-{n}", "name": f"Bench {role.title()} {n}",
                              "email": f"{role}-{n}@example.org"})
            for role in ("caseworker", "supervisor")
        }  # fmt: skip
        due = first_due + timedelta(seconds=window * n / count)
        episode: tuple[Any, ...] = (episode_id, county, "B.E.", staff["caseworker"],
                   staff["supervisor"], "{}", "{}")  # fmt: skip
        obligation = (
            uuid4(), episode_id, county, POLICY.jurisdiction_of(county), rule.id,
            rule.title, opened_at, due - timedelta(hours=24), due, POLICY.digest,
            *frozen[rule.id], defaults.snooze, defaults.breach_repeat,
        )  # fmt: skip
        yield episode, obligation


async def seed(
    database_url: str, count: int, first_due: datetime, window: float
) -> None:
    """Write the open obligations, each with its breach step, into the notifier's
    tables (the notifier has made them, running) with plain SQL, so that any
    tree's notifier can be measured whatever its own helpers look like."""
    rows = obligation_rows(count, first_due, window, datetime.now(UTC))
    conn = await asyncpg.connect(database_url)
    try:
        while chunk := list(islice(rows, CHUNK)):
            episodes = [episode for episode, _ in chunk]
            obligations = [obligation for _, obligation in chunk]
            steps = [(o[0], "breach:0", "breach", o[8], '{"level": null}')
                     for o in obligations]  # fmt: skip
            async with conn.transaction():
                for table, columns, records in (
                    ("episodes", EPISODE_COLUMNS, episodes),
                    ("obligations", OBLIGATION_COLUMNS, obligations),
                    ("timers", TIMER_COLUMNS, steps),
                ):
                    await conn.copy_records_to_table(
                        table, schema_name="notifier", columns=columns, records=records
                    )
    finally:
        await conn.close()


async def breaches(database_url: str) -> dict[str, tuple[datetime, datetime]]:
    """Each breach alert the notifier raised: alert id -> its obligation's due and
    when the notifier raised it (so lateness splits into firing and sending)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT a.id, o.due_at, a.created_at FROM notifier.alerts a "
            "JOIN notifier.obligations o ON o.id = a.obligation_id "
            "WHERE a.step_key = 'breach:0'"
        )
    finally:
        await conn.close()
    return {str(r["id"]): (r["due_at"], r["created_at"]) for r in rows}


def run_once(
    count: int, window: float, lead: float, settle: float, profile: Path | None = None
) -> dict[str, Any]:
    with (
        Receiver() as receiver,
        bench_stack(
            {
                "NOTIFIER_WEBHOOK_URL": receiver.url,
                "NOTIFIER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        ) as stack,
    ):
        url = stack.infra.database_url
        first_due = datetime.now(UTC) + timedelta(seconds=lead)
        started = time.monotonic()
        asyncio.run(seed(url, count, first_due, window))
        setup_s = time.monotonic() - started
        infra = stack.infra_pids()
        pids = {"notifier": stack.pids()["notifier"], **infra}
        with (
            ResourceSampler(pids, trees=infra) as sampler,
            profiled(pids["notifier"], profile),
        ):
            last_due = first_due + timedelta(seconds=window)
            time.sleep(max((last_due - datetime.now(UTC)).total_seconds(), 0))
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline:
                if len(receiver.received) >= count:
                    break
                time.sleep(1)
        raised = asyncio.run(breaches(url))
    lateness, firing = [], []
    for alert_id, (due, created) in raised.items():
        firing.append((created - due).total_seconds())
        if alert_id in receiver.received:
            lateness.append(min(receiver.received[alert_id]) - due.timestamp())
    twice = sum(len(times) > 1 for times in receiver.received.values())
    return {
        "obligations": count,
        "setup_s": round(setup_s, 1),
        "missed": count - len(lateness),
        "twice": twice,
        "lateness_p50_s": round(percentile(lateness, 50), 3),
        "lateness_p99_s": round(percentile(lateness, 99), 3),
        "lateness_max_s": round(max(lateness, default=float("nan")), 3),
        "raised_p50_s": round(percentile(firing, 50), 3),
        "raised_p99_s": round(percentile(firing, 99), 3),
        "notifier_cpu_s": sampler.usage["notifier"].cpu_seconds,
        "notifier_peak_rss_mb": sampler.usage["notifier"].peak_rss_mb,
        **{f"{n}_cpu_s": sampler.usage[n].cpu_seconds for n in infra},
        "busy_cores": sampler.busy_cores,
        "cores": sampler.cores,
    }


def run_idle(count: int, seconds: float) -> dict[str, Any]:
    """The notifier with ``count`` open obligations and nothing due, sampled."""
    with bench_stack() as stack:
        started = time.monotonic()
        first_due = datetime.now(UTC) + IDLE_LEAD
        asyncio.run(seed(stack.infra.database_url, count, first_due, 86_400))
        setup_s = time.monotonic() - started
        infra = stack.infra_pids()
        notifier = stack.pids()["notifier"]
        samples: list[tuple[float, float, float]] = []  # seconds, CPU s, RSS MB
        with ResourceSampler(infra, trees=infra, interval=IDLE_SAMPLE_S) as sampler:
            began = time.monotonic()
            while True:
                at = time.monotonic() - began
                cpu, rss = cpu_and_rss(notifier)
                samples.append((round(at, 1), round(cpu, 2), round(rss, 1)))
                if at >= seconds:
                    break
                time.sleep(min(IDLE_SAMPLE_S, seconds - at))
    (t0, cpu0, rss0), (t1, cpu1, rss1) = samples[0], samples[-1]
    minutes = max(t1 - t0, 1e-9) / 60
    return {
        "open_obligations": count,
        "setup_s": round(setup_s, 1),
        "idle_s": round(t1 - t0, 1),
        "notifier_cpu_s_per_min": round((cpu1 - cpu0) / minutes, 3),
        "notifier_rss_start_mb": rss0,
        "notifier_rss_end_mb": rss1,
        "notifier_rss_growth_mb": round(rss1 - rss0, 1),
        **{
            f"{n}_cpu_s_per_min": round(sampler.usage[n].cpu_seconds / minutes, 3)
            for n in infra
        },
        "samples": samples,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        ("obligations due", f"{result['obligations']} within {result['window_s']} s"),
        ("breaches missed (never reached the receiver)", result["missed"]),
        ("alerts received twice", result["twice"]),
        ("lateness, received minus due: p50 / p99 / max",
         f"{result['lateness_p50_s']} / {result['lateness_p99_s']} / "
         f"{result['lateness_max_s']} s"),
        ("of which firing, alert raised minus due: p50 / p99",
         f"{result.get('raised_p50_s')} / {result.get('raised_p99_s')} s"),
        ("notifier: CPU, peak memory",
         f"{result['notifier_cpu_s']} s, {result['notifier_peak_rss_mb']} MB"),
        ("postgres (all its processes): CPU", f"{result.get('postgres_cpu_s')} s"),
        ("whole machine: cores busy on average",
         f"{result['busy_cores']} of {result['cores']}"),
        ("writing the obligations (before the clock)", f"{result['setup_s']} s"),
    ]  # fmt: skip
    return measure_table(rows, runs=result["runs"], result=result)


def idle_markdown(result: dict[str, Any]) -> str:
    rows = [
        ("open obligations (nothing due while measured)", result["open_obligations"]),
        ("measured for", f"{result['idle_s']} s"),
        ("notifier: CPU per minute", f"{result['notifier_cpu_s_per_min']} s"),
        ("notifier: memory at the start / the end",
         f"{result['notifier_rss_start_mb']} / {result['notifier_rss_end_mb']} MB"),
        ("postgres (all its processes): CPU per minute",
         f"{result.get('postgres_cpu_s_per_min')} s"),
        ("writing the obligations (before the clock)", f"{result['setup_s']} s"),
    ]  # fmt: skip
    return measure_table(rows, runs=result["runs"], result=result)


def idle_plot(sides: dict[str, Sequence[Sequence[float]]]) -> Any:
    """Memory and CPU over time, a line per side (label -> its first run's
    samples)."""

    def plot(figure: Any) -> None:
        memory, cpu = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        for label, samples in sides.items():
            at = [sample[0] for sample in samples]
            memory.plot(at, [sample[2] for sample in samples], label=label)
            cpu.plot(at, [sample[1] - samples[0][1] for sample in samples], label=label)
        memory.set_ylim(bottom=0)
        memory.set_ylabel("notifier resident memory (MB)")
        cpu.set_ylabel("notifier CPU since the start (s)")
        for axis in (memory, cpu):
            axis.set_xlabel("seconds idle")
            axis.legend()

    return plot


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obligations", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=120, help="seconds")
    parser.add_argument("--lead", type=float, default=60,
                        help="seconds from the start to the first due time")  # fmt: skip
    parser.add_argument("--settle", type=float, default=120,
                        help="seconds to wait for the last alerts")  # fmt: skip
    parser.add_argument("--idle", type=int, metavar="N",
                        help="measure the idle notifier with N open obligations")  # fmt: skip
    parser.add_argument("--idle-seconds", type=float, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--name", help="results as bench/results/NAME.* (default: "
                        "escalations, or escalations-idle with --idle)")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="record the notifier with py-spy during the storm "
                        "(folded stacks)")  # fmt: skip
    baseline.add_arguments(parser)
    args = parser.parse_args(argv)

    def one_run() -> dict[str, Any]:
        if args.idle:
            return run_idle(args.idle, args.idle_seconds)
        return run_once(
            args.obligations, args.window, args.lead, args.settle, args.profile
        )

    if args.one_run:
        baseline.emit(one_run())
        return {}
    settings = {"runs": args.runs, "machine": machine(),
                "date_of_run": datetime.now(UTC).date().isoformat()}  # fmt: skip
    if not args.idle:
        settings["window_s"] = args.window
    title = (f"{args.idle} open obligations, idle" if args.idle
             else f"{args.obligations} breaches within {args.window:g} s")  # fmt: skip
    if args.baseline:
        sides = baseline.alternate(
            "bench.escalations",
            lambda _: baseline.child_argv(args),
            baseline=args.baseline,
            new=args.new,
            runs=args.runs,
        )
        result = {
            **settings,
            "new_code": sides.new.label,
            "baseline_code": sides.baseline.label,
            **compare(sides.new_runs, sides.baseline_runs),
        }
        text = compare_table(result)
        plot = (
            idle_plot({result[f"{side}_code"]: result[side]["samples"]
                       for side in ("new", "baseline")})
            if args.idle
            else plot_sides(result, ["lateness_p50_s", "lateness_p99_s",
                                     "lateness_max_s"],
                            ylabel="lateness, received minus due (s)", title=title)
        )  # fmt: skip
    else:
        runs = []
        for _ in range(args.runs):
            runs.append(one_run())
            print(json.dumps(runs[-1]))  # noqa: T201
        result = {**median_run(runs), **settings, "each_run": runs}
        text = idle_markdown(result) if args.idle else markdown(result)
        plot = (
            idle_plot({f"run {n + 1}": r["samples"] for n, r in enumerate(runs)})
            if args.idle
            else lateness_plot(runs, title)
        )
    if not args.no_write:
        name = args.name or ("escalations-idle" if args.idle else "escalations")
        write_results(name, result, text, plot)
    print(text)  # noqa: T201
    return result


def lateness_plot(runs: list[dict[str, Any]], title: str) -> Any:
    def plot(figure: Any) -> None:
        axis = figure.add_subplot(1, 1, 1)
        for q in ("p50", "p99", "max"):
            axis.plot(range(1, len(runs) + 1),
                      [r[f"lateness_{q}_s"] for r in runs], marker="o", label=q)  # fmt: skip
        axis.axhline(1.0, color="grey", linestyle="--", label="target p99")
        axis.set_xlabel("run")
        axis.set_ylabel("lateness, received minus due (s)")
        axis.set_title(title)
        axis.legend()

    return plot


if __name__ == "__main__":
    main()
