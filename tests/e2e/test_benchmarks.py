"""A tiny run of each benchmark that starts the whole stack, so they keep working
between real runs (the figures themselves come from ``python -m bench.<name>``, not
from here)."""

import math

import pytest

from bench import escalations, load
from devtools.devstack import SERVICE_NAMES
from tests.conftest import BACKENDS

pytestmark = pytest.mark.skipif(
    "embedded" not in BACKENDS, reason="the benchmark starts its own embedded stack"
)


def test_the_load_benchmark_follows_every_report_to_its_audit_entry_and_obligations():
    summary = load.main(
        ["--rate", "4", "--duration", "3", "--runs", "1", "--kafka-share", "0.5",
         "--settle", "90", "--no-write"]
    )  # fmt: skip
    assert summary["reports"] == 12
    assert 0 < summary["via_kafka"] < 12
    assert summary["rejected_or_failed"] == 0, summary.get("first_error")
    assert summary["incomplete"] == 0
    for figure in ("audit_p50_s", "audit_p99_s", "obligations_p99_s"):
        assert math.isfinite(summary[figure])
        assert 0 < summary[figure] < 90
    for service in SERVICE_NAMES:
        assert summary[f"{service}_peak_rss_mb"] > 10
        assert summary[f"{service}_cpu_s"] > 0
    assert summary["generator_cpu_s"] > 0
    # The embedded database (with its backends) and broker are measured too.
    assert summary["postgres_cpu_s"] > 0
    assert summary["broker_cpu_s"] > 0
    assert 0 < summary["cpu_ms_per_report"] < 60_000
    # Every report commits and writes rows in each service's schema.
    assert summary["db_commits_per_report"] >= 1
    assert summary["db_wal_kb_per_report"] > 0
    for schema in ("intake", "notifier", "followup", "audit"):
        assert summary[f"db_rows_written_per_report_{schema}"] >= 1
    # The notifier keeps one pending timer per open obligation.
    assert summary["open_obligations_per_report"] >= 1
    assert summary["notifier_pending_timers_per_open_obligation"] == 1
    # pg_stat_statements, loaded by the benchmark's PostgreSQL, names the statements.
    assert summary["db_statements_per_report"] > summary["db_commits_per_report"]
    top = summary["db_top_statements"]
    assert top
    assert all(s["per_report"] > 0 and s["statement"] for s in top)
    assert any("INSERT INTO" in s["statement"] for s in top)
    slowest = summary["db_slowest_statements"]
    times = [s["ms_per_report"] for s in slowest]
    assert times == sorted(times, reverse=True)
    assert times[0] > 0
    # 12 reports sent over 3 s: the end-to-end rate is at most the send rate.
    assert 0 < summary["end_to_end_rate_per_s"] <= summary["achieved_rate_per_s"]
    assert 0 < summary["machine_busy_cores"] <= summary["machine_cores"]


def test_every_breach_due_in_the_window_pages_the_receiver_once():
    summary = escalations.main(
        ["--obligations", "200", "--window", "5", "--lead", "10", "--settle", "60",
         "--runs", "1", "--no-write"]
    )  # fmt: skip
    assert summary["missed"] == 0
    assert summary["twice"] == 0
    assert math.isfinite(summary["lateness_p99_s"])
    # Never before the due time (a breach paged early would be a false alarm).
    assert 0 <= summary["lateness_p50_s"] <= summary["lateness_p99_s"] < 60
    assert summary["notifier_cpu_s"] > 0
    assert summary["notifier_peak_rss_mb"] > 10
    assert summary["postgres_cpu_s"] > 0
