"""A tiny run of the audit benchmark, so it keeps working between real runs."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).parents[3] / "bench" / "audit_bench.py"


def test_the_audit_benchmark_appends_and_verifies_a_small_log(infra):
    spec = importlib.util.spec_from_file_location("audit_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        [
            "--entries",
            "1200",
            "--batch",
            "250",
            "--database-url",
            infra.database_url,
            "--no-write",
        ]
    )
    assert result["entries"] == 1200
    assert result["append_rate_per_s"] > 0
    assert result["verify_seconds"] > 0
