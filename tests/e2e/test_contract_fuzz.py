"""Every service's API fuzzed from its own OpenAPI document (schemathesis), with a
token of each role scoped to one county: no 5xx, every answer in its documented
status codes, content type and schema, no refusal that repeats a child's personal
data, and nothing of another county answered (``tests/fuzz_checks.py``).

Bounded here (a few seconds per service and role); ``make fuzz`` runs the long one
(bench/fuzz.py, results in bench/results)."""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import api
from tests.conftest import BACKENDS

ROOT = Path(__file__).parents[2]
SERVICES = ("intake", "notifier", "followup", "audit")
ROLES = ("county_system", "caseworker", "oncall", "auditor", "auditor_pii", "admin")
COUNTY = "CA-037"
"""A county no other end-to-end test reports in: fuzzed reports land there."""
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,no_personal_input_echoed,only_own_county"
)
SECONDS = int(os.environ.get("MFC_FUZZ_SECONDS", "3"))
REPORT = os.environ.get("MFC_FUZZ_REPORT")
"""Where ``make fuzz`` writes its figures (Markdown; the raw counts beside it)."""


def fuzz(url: str, role: str, seconds: int) -> subprocess.CompletedProcess[str]:
    token = api.token(role, counties=[COUNTY])
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{url}/openapi.json",
            "--url",
            url,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-time",
            str(seconds),
            "--phases",
            "examples,coverage,fuzzing",
            "--no-color",
        ],
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.fuzz_checks",
            "MFC_FUZZ_COUNTY": COUNTY,
            "PYTHONPATH": str(ROOT),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 60,
        check=False,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_api_keeps_its_own_contract_for_every_role(stack, service):
    if stack.backend != BACKENDS[0]:
        pytest.skip("the API is the same on either backend: fuzzed on the first")
    failed = {}
    for role in ROLES:
        started = time.monotonic()
        run = fuzz(stack.url(service), role, SECONDS)
        if REPORT:
            record(service, role, run, time.monotonic() - started)
        if run.returncode != 0:
            failed[role] = run.stdout[-4000:] + run.stderr[-1000:]
    assert not failed, "\n\n".join(f"--- {r}\n{out}" for r, out in failed.items())


def record(
    service: str, role: str, run: subprocess.CompletedProcess[str], seconds: float
) -> None:
    """Add one run's figures to the report (``make fuzz``)."""
    assert REPORT is not None
    raw = Path(REPORT).with_suffix(".json")
    runs = json.loads(raw.read_text()) if raw.exists() else {}
    generated = re.findall(r"(\d+) generated", run.stdout)
    runs[f"{service}/{role}"] = {
        "requests": int(generated[-1]) if generated else 0,
        "seconds": round(seconds, 1),
        "passed": run.returncode == 0,
    }
    raw.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")
    from bench.harness import machine

    total = sum(r["requests"] for r in runs.values())
    lines = [
        "# API fuzzing (schemathesis)",
        "",
        f"{machine()}, {datetime.now(UTC):%Y-%m-%d}; `make fuzz`: each service's "
        f"OpenAPI document, a token of each role scoped to {COUNTY}, {SECONDS} s "
        f"per service and role; checks {CHECKS.replace(',', ', ')}.",
        "",
        f"**{total:,} requests, "
        f"{sum(not r['passed'] for r in runs.values())} runs failing.**",
        "",
        "| service/role | requests | seconds | passed |",
        "|---|---|---|---|",
        *(
            f"| {key} | {r['requests']:,} | {r['seconds']} | {r['passed']} |"
            for key, r in sorted(runs.items())
        ),
    ]
    Path(REPORT).write_text("\n".join(lines) + "\n")
