"""The deployment files fit the code and each other: the dashboard reads only metrics
the services export, Prometheus scrapes the ports the services listen on, every
container has a healthcheck, third-party images are pinned, each service logs in to
PostgreSQL as its own role, and the offline variant needs no registry.

tests/e2e/test_compose.py brings the offline stack up for real."""

import json
import re
from pathlib import Path

import yaml

from tests.unit.test_alert_rules import exported_metrics

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "notifier", "followup", "audit")
"""The services with a database role and a policy (the console has neither)."""
IMAGES = (*SERVICES, "console")
DEFAULT_PORTS = {
    "intake": 8001,
    "notifier": 8002,
    "followup": 8003,
    "audit": 8004,
    "console": 8000,
}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def histograms() -> set[str]:
    names: set[str] = set()
    for source in [
        *ROOT.glob("services/*/src/**/*.py"),
        *ROOT.glob("shared/src/**/*.py"),
    ]:
        names.update(re.findall(r'Histogram\(\s*"(mfc_[a-z_]+)"', source.read_text()))
    return names


def dashboard_expressions() -> list[str]:
    board = json.loads(
        (ROOT / "deploy/grafana/dashboards/missing-from-care.json").read_text()
    )
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_the_dashboard_reads_only_exported_metrics():
    exported, buckets = exported_metrics(), histograms()
    assert "mfc_alert_lateness_seconds" in buckets  # the scan finds histograms
    expressions = dashboard_expressions()
    assert len(expressions) >= 20
    for expr in expressions:
        for name in re.findall(r"\bmfc_[a-z_]+", expr):
            if name.endswith("_bucket"):
                assert name.removesuffix("_bucket") in buckets, expr
            else:
                assert name in exported, f"{expr} reads unknown {name}"


def test_the_dashboard_covers_what_operators_watch():
    text = " ".join(dashboard_expressions())
    for metric in (
        "mfc_open_obligations",
        "mfc_obligation_next_due_seconds",
        "mfc_alerts_raised_total",
        "mfc_alert_lateness_seconds",
        "mfc_prompts_open",
        "mfc_consumer_lag",
        "mfc_audit_tree_size",
        "mfc_audit_last_checkpoint_age_seconds",
    ):
        assert metric in text, metric


def test_prometheus_scrapes_every_service_on_its_default_port_with_the_rules():
    config = load("deploy/prometheus/prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in config["scrape_configs"]
    }
    assert jobs == {s: [f"127.0.0.1:{p}"] for s, p in DEFAULT_PORTS.items()}
    compose = (ROOT / "docker-compose.yml").read_text()
    for service, port in DEFAULT_PORTS.items():
        upper = service.upper()
        assert f"{upper}_HTTP_PORT: ${{MFC_{upper}_PORT:-{port}}}" in compose
        dockerfile = (ROOT / f"services/{service}/Dockerfile").read_text()
        assert f"{upper}_HTTP_PORT={port}" in dockerfile


def test_every_container_has_a_healthcheck_host_networking_and_a_pinned_image():
    compose = load("docker-compose.yml")
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        image = service["image"]
        base = name.removesuffix("-2")  # the replicas profile
        if name == "witness":  # the audit image, its own process
            assert image == "local/mfc-audit:latest"
            assert service["command"] == ["python3", "-m", "audit.witness"]
            assert "healthcheck" in service
        elif base in IMAGES:
            assert image == f"local/mfc-{base}:latest"
            dockerfile = ROOT / f"services/{base}/Dockerfile"
            assert "HEALTHCHECK" in dockerfile.read_text()
            if name == base:
                assert service["build"]["dockerfile"] == f"services/{name}/Dockerfile"
            else:
                assert service["profiles"] == ["replicas"]
        else:
            assert "healthcheck" in service, name
            tag = image.rsplit(":", 1)[1]
            assert re.match(r"v?\d+(\.\d+)+", tag), f"{name}: {image} is not pinned"


def test_services_wait_for_healthy_infrastructure_and_use_their_own_database_role():
    compose = load("docker-compose.yml")
    roles_script = (ROOT / "deploy/postgres/initdb/10-mfc-roles.sh").read_text()
    for name in [*SERVICES, *(f"{s}-2" for s in SERVICES)]:
        service = compose["services"][name]
        name = name.removesuffix("-2")
        assert service["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        url = service["environment"]["DATABASE_URL"]
        upper = name.upper()
        assert url.startswith(f"postgresql://mfc_{name}:${{{upper}_DB_PASSWORD:?}}@")
        assert service["environment"][
            f"{upper}_POLICY_PATH" if name != "audit" else "AUDIT_SIGNING_KEY_FILE"
        ]
    assert "for service in intake notifier followup audit" in roles_script
    assert "NOCREATEROLE" in roles_script
    assert "NOCREATEDB" in roles_script


def test_no_secret_is_written_into_the_compose_files():
    for name in ("docker-compose.yml", "docker-compose.offline.yml"):
        text = (ROOT / name).read_text()
        for key, value in re.findall(
            r"^\s*([A-Z_]*(?:PASSWORD|SECRET|KEY)[A-Z_]*):\s*(.+)$", text, re.M
        ):
            assert value.startswith("${") or value.startswith("/run/secrets/"), key


def test_the_offline_variant_uses_only_images_built_here():
    offline = load("docker-compose.offline.yml")
    compose = load("docker-compose.yml")
    for name, service in compose["services"].items():
        override = offline["services"].get(name, {})
        if "grafana" in override.get("profiles", []):
            continue  # started only on request, where the image can be had
        image = override.get("image", service["image"])
        assert image.startswith("local/"), f"{name}: {image}"
        built_by = (ROOT / "scripts/build-images.sh").read_text()
        assert image.split(":")[0].split("/")[1].removeprefix("mfc-") in built_by


def test_service_images_are_multi_stage_non_root_and_pinned():
    for name in IMAGES:
        text = (ROOT / f"services/{name}/Dockerfile").read_text()
        assert len(re.findall(r"^FROM ", text, re.M)) == 2, name
        assert re.search(
            r"^ARG PYTHON_BASE=python:3\.11\.\d+-slim-bookworm$", text, re.M
        )
        assert re.search(r"^USER mfc$", text, re.M)
        assert f'"-m", "{name}"]' in text
