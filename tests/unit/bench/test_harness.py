"""The benchmarks' own parts: the seeded report generator and the result helpers."""

import json
import math
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

import psutil
import pytest

from bench import generator
from bench.harness import (
    ResourceSampler,
    median_run,
    percentile,
    top_frames,
    write_results,
)
from bench.load import per_report
from shared.events import EpisodeReportedData

pytestmark = pytest.mark.unit


def reports(seed: int, n: int = 200) -> list[dict]:
    rng = random.Random(seed)
    learned = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    return [
        generator.report(rng, county="NC-063", learned=learned, n=i) for i in range(n)
    ]


def test_every_generated_report_is_one_intake_accepts():
    for body in reports(seed=7):
        EpisodeReportedData.model_validate(body)


def test_the_same_seed_gives_the_same_reports_and_another_seed_others():
    assert reports(seed=3) == reports(seed=3)
    assert reports(seed=3) != reports(seed=4)
    assert len({r["case_id"] for r in reports(seed=3)}) == 200


def test_the_generated_load_varies_like_a_caseload():
    bodies = reports(seed=1, n=1000)
    circumstances = {b["circumstance"] for b in bodies}
    assert {"runaway", "family_abduction"} <= circumstances
    runaways = sum(b["circumstance"] == "runaway" for b in bodies)
    assert 700 < runaways < 900
    assert any(b["endangerments"]["prescription_medications"] for b in bodies)
    assert not all(b["endangerments"]["prescription_medications"] for b in bodies)


def test_percentiles_interpolate_between_ranks():
    values = list(range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([4.0], 99) == 4.0
    assert math.isnan(percentile([], 50))


def test_the_summary_of_runs_takes_the_median_of_each_figure():
    runs = [
        {"p99": 3.0, "ok": True, "machine": "a"},
        {"p99": 1.0, "ok": False, "machine": "b"},
        {"p99": 2.0, "ok": True, "machine": "c"},
    ]
    assert median_run(runs) == {"p99": 2.0, "ok": True, "machine": "a"}


def test_results_are_written_as_json_and_markdown(tmp_path):
    drawn = []
    written = write_results(
        "demo", {"rate": 5}, "| a | b |\n", drawn.append, directory=tmp_path
    )
    assert json.loads((tmp_path / "demo.json").read_text())["rate"] == 5
    assert (tmp_path / "demo.md").read_text() == "| a | b |\n"
    png = tmp_path / "demo.png"
    assert (png in written) == png.exists() == bool(drawn)


def test_the_sampler_measures_a_process_and_the_whole_machine():
    burner = subprocess.Popen(
        [sys.executable, "-c", "import time\nt = time.process_time()\n"
         "while time.process_time() - t < 0.6: pass\ntime.sleep(5)"]
    )  # fmt: skip
    try:
        with ResourceSampler({"burner": burner.pid}, interval=0.05) as sampler:
            time.sleep(1.0)
    finally:
        burner.kill()
        burner.wait()
    assert 0.4 <= sampler.usage["burner"].cpu_seconds <= 1.1
    assert sampler.usage["burner"].peak_rss_mb > 1
    assert 0.3 <= sampler.busy_cores <= sampler.cores


def test_the_sampler_counts_children_started_while_it_samples():
    """PostgreSQL's backends are children of its postmaster: a child that appears
    during the sampling and burns CPU counts for its parent's name."""
    burn = (
        "import time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.6: pass\ntime.sleep(5)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\ntime.sleep(0.3)\n"
         f"child = subprocess.Popen([sys.executable, '-c', {burn!r}])\n"
         "time.sleep(5)\nchild.kill()"]
    )  # fmt: skip
    try:
        pids = {"parent": parent.pid, "parent alone": parent.pid}
        with ResourceSampler(pids, trees={"parent"}, interval=0.05) as sampler:
            time.sleep(1.5)
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
    # The parent alone sleeps (well under 0.3 s of CPU); its child burns 0.6 s.
    assert 0.5 <= sampler.usage["parent"].cpu_seconds <= 1.3
    assert sampler.usage["parent alone"].cpu_seconds < 0.3


def test_a_profile_in_short_ranks_functions_by_self_and_by_total_time(tmp_path):
    folded = tmp_path / "intake.folded"
    folded.write_text(
        "main (intake/__main__.py:1);handle (intake/api.py:2);dumps (json/c.py:3) 6\n"
        "main (intake/__main__.py:1);handle (intake/api.py:2) 3\n"
        "main (intake/__main__.py:1);poll (shared/outbox.py:4) 1\n"
    )
    top = top_frames(folded, count=2)
    assert top["samples"] == 10
    assert top["self"] == [
        ("dumps (json/c.py:3)", 0.6),
        ("handle (intake/api.py:2)", 0.3),
    ]
    # Total time: our own functions only, not the start-up every sample sits under.
    assert top["total"] == [
        ("handle (intake/api.py:2)", 0.9),
        ("poll (shared/outbox.py:4)", 0.1),
    ]


def test_database_counts_per_report_are_the_growth_over_the_reports():
    before = {
        "commits": 100,
        "ins:intake": 10,
        "upd:intake": 0,
        "del:intake": 0,
        "wal_bytes": 4096,
        "statements": {
            "1": ("INSERT INTO episodes", 5, 10.0, 1024.0),
            "2": ("COMMIT", 40, 4.0, 0.0),
        },
    }
    after = {"commits": 124, "ins:intake": 30, "upd:intake": 4, "del:intake": 2,
             "wal_bytes": 4096 + 4 * 3072,
             "statements": {"1": ("INSERT INTO episodes", 9, 30.0, 9216.0),
                            "2": ("COMMIT", 64, 6.0, 4096.0),
                            "3": ("SELECT 1", 2, 0.4, 0.0)}}  # fmt: skip
    figures = per_report(before, after, reports=4)
    assert figures["db_commits_per_report"] == 6
    assert figures["db_rows_inserted_per_report"] == 5
    assert figures["db_rows_updated_per_report"] == 1
    assert figures["db_rows_deleted_per_report"] == 0.5
    assert figures["db_rows_written_per_report_intake"] == 6.5
    assert figures["db_rows_written_per_report_audit"] == 0
    assert figures["db_wal_kb_per_report"] == 3
    assert figures["db_statements_per_report"] == 7.5  # (4 + 24 + 2) / 4
    assert figures["db_statement_ms_per_report"] == 5.6  # (20 + 2 + 0.4) / 4
    assert figures["db_top_statements"][:2] == [
        {
            "per_report": 6.0,
            "ms_per_report": 0.5,
            "wal_kb_per_report": 1.0,
            "statement": "COMMIT",
        },
        {
            "per_report": 1.0,
            "ms_per_report": 5.0,
            "wal_kb_per_report": 2.0,
            "statement": "INSERT INTO episodes",
        },
    ]
    # The same statements by the time PostgreSQL spent on them.
    assert [s["statement"] for s in figures["db_slowest_statements"]] == [
        "INSERT INTO episodes",
        "COMMIT",
        "SELECT 1",
    ]
    # And by the WAL they wrote.
    assert [s["statement"] for s in figures["db_most_wal_statements"]][:2] == [
        "INSERT INTO episodes",
        "COMMIT",
    ]
    # Without pg_stat_statements (a database the benchmark did not start).
    assert "db_statements_per_report" not in per_report(
        {**before, "statements": {}}, {**after, "statements": {}}, reports=4
    )
