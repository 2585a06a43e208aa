"""A tiny run of the deadline benchmark with every scheduler it compares, so the
comparison keeps working between real runs (``python -m bench.deadlines``)."""

import math

from bench import deadlines


def test_every_scheduler_fires_each_deadline_once(infra):
    summary = deadlines.main(
        ["--deadlines", "40", "--window", "3", "--lead", "12", "--runs", "1",
         "--database-url", infra.database_url, "--no-write"]
    )  # fmt: skip
    assert set(summary["schedulers"]) == set(deadlines.SCHEDULERS)
    for name, result in summary["schedulers"].items():
        assert result["missed"] == 0, name
        assert result["fired_twice"] == 0, name
        assert math.isfinite(result["lateness_p99_s"]), name
        assert result["lateness_p50_s"] >= -0.05, f"{name} fired before the due time"
        assert result["cpu_s"] > 0, name
        assert result["peak_rss_mb"] > 10, name
