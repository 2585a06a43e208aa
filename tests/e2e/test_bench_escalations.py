"""A tiny run of the escalation benchmark, so it keeps working between real runs
(the figures themselves come from ``python -m bench.escalations``)."""

import math

import pytest

from bench import escalations
from tests.conftest import BACKENDS

pytestmark = pytest.mark.skipif(
    "embedded" not in BACKENDS, reason="the benchmark starts its own embedded stack"
)


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
