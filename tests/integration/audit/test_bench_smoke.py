"""A tiny run of the audit benchmark, so it keeps working between real runs."""

from bench import audit_bench


def test_the_audit_benchmark_appends_and_verifies_a_small_log(infra):
    result = audit_bench.main(
        ["--entries", "1200", "--batch", "250", "--runs", "2",
         "--database-url", infra.database_url, "--no-write"]
    )  # fmt: skip
    assert result["entries"] == 1200
    assert result["runs"] == 2
    assert [run["entries"] for run in result["each_run"]] == [1200, 1200]
    assert result["append_rate_per_s"] > 0
    assert result["verify_seconds"] > 0
