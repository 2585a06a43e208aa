"""The Prometheus alert rules fit the code: every metric they read is one a service
exports, and every alert has a runbook section to follow."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def alerts() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_metrics() -> set[str]:
    """Metric names declared in the services' and shared code."""
    names: set[str] = set()
    for source in [
        *ROOT.glob("services/*/src/**/*.py"),
        *ROOT.glob("shared/src/**/*.py"),
    ]:
        names.update(re.findall(r'"(mfc_[a-z_]+)"', source.read_text()))
    return names


def test_every_metric_an_alert_reads_is_exported():
    exported = exported_metrics()
    assert "mfc_consumer_lag" in exported  # the scan itself finds metrics
    for rule in alerts():
        used = set(re.findall(r"\bmfc_[a-z_]+", rule["expr"]))
        assert used or rule["expr"].startswith("up{"), rule["alert"]
        assert used <= exported, f"{rule['alert']} reads unknown {used - exported}"


def test_every_alert_has_a_severity_and_a_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    for rule in alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbooks.md#")
        assert url.split("#", 1)[1] in anchors, f"no runbook for {rule['alert']}"
