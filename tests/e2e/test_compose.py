"""The deployment itself: docker-compose.yml with the offline override
(docker-compose.offline.yml) and the `replicas` profile, on the images `make images`
builds here (Tansu, Debian's PostgreSQL and Prometheus, an SMTP catcher, the four
services from their own Dockerfiles). Every container must become healthy; the golden
scenario runs through it (report, obligations, an alert email, notices recorded,
obligations satisfied, the audit trail verified); two replicas of every service share
the work with nothing done twice; each service works as its own database role.

Tokens come from the test issuer, whose key the stack fetches from a JWKS URL served
here, as it would from an agency's identity provider."""

import json
import secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from devtools.devstack import free_port
from tests import api
from tests.conftest import BACKENDS
from tests.e2e.fast import FAST_POLICY, report_of_now
from tests.e2e.test_notifier import messages_handled
from tests.e2e.test_walking_skeleton import eventually

pytestmark = pytest.mark.skipif(
    "containers" not in BACKENDS, reason="runs only where the containers backend runs"
)

ROOT = Path(__file__).resolve().parents[2]
FILES = (ROOT / "docker-compose.yml", ROOT / "docker-compose.offline.yml")
KID = "compose-test"
# The services' own ports are the compose defaults: Prometheus scrapes those.
PORTS = {
    "intake": 8001,
    "notifier": 8002,
    "followup": 8003,
    "audit": 8004,
    "witness": 8005,
    "console": 8000,
    "intake-2": 8011,
    "notifier-2": 8012,
    "followup-2": 8013,
    "audit-2": 8014,
    "prometheus": 9090,
}
SERVICES = ("intake", "notifier", "followup", "audit")


def compose_command() -> list[str]:
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError(
        "neither `docker compose` nor docker-compose is installed "
        "(scripts/docker-engine.sh installs Debian's docker-compose)"
    )


class JwksServer:
    """The identity provider's JWKS URL: the test issuer's public key, with a kid."""

    def __init__(self) -> None:
        key = load_pem_public_key(api.PUBLIC_KEY_FILE.read_bytes())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
        body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def headers(*roles: str) -> dict[str, str]:
    return api.bearer(*(roles or ("admin",)), headers={"kid": KID})


class ComposeStack:
    def __init__(self, project: str, env_file: Path, env: dict[str, str]) -> None:
        self.project = project
        self.env_file = env_file
        self.env = env
        self.command = compose_command()

    def run(self, *args: str, timeout: float = 600) -> str:
        command = [*self.command, "--project-name", self.project]
        command += ["--env-file", str(self.env_file)]
        for file in FILES:
            command += ["--file", str(file)]
        result = subprocess.run(
            [*command, "--profile", "replicas", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service name to `docker inspect` of its container."""
        ids = self.run("ps", "-q").split()
        inspected = json.loads(
            subprocess.run(
                ["docker", "inspect", *ids], capture_output=True, check=True
            ).stdout
        )
        return {
            c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected
        }

    def exec(self, service: str, *command: str) -> str:
        return self.run("exec", "-T", service, *command, timeout=60)

    def sql(self, query: str) -> list[str]:
        port = self.env["MFC_POSTGRES_PORT"]
        out = self.exec(
            "postgres", "psql", "-U", "postgres", "-d", "mfc", "-p", port, "-At",
            "-v", "ON_ERROR_STOP=1", "-c", query,
        )  # fmt: skip
        return out.splitlines()

    def emails(self) -> list[dict[str, str]]:
        script = (
            "import json, mailbox\n"
            "print(json.dumps([{'to': m['To'], 'subject': m['Subject'],"
            " 'delivery': m['X-MFC-Delivery'],"
            " 'body': m.get_payload(decode=True).decode()}"
            " for m in mailbox.Maildir('/var/mail/mfc', create=False)]))"
        )
        result: list[dict[str, str]] = json.loads(
            self.exec("mail", "python3", "-c", script)
        )
        return result

    @staticmethod
    def url(service: str) -> str:
        return f"http://127.0.0.1:{PORTS[service]}"


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    from audit.bootstrap import write_key_pair
    from audit.domain import note
    from audit.domain.checkpoint import load_private_key

    for name, port in PORTS.items():
        try:
            import socket

            with socket.create_server(("127.0.0.1", port)):
                pass
        except OSError:
            pytest.fail(f"port {port} ({name}) is taken; the compose test needs it")
    tmp = tmp_path_factory.mktemp("compose")
    policy = tmp / "policy.toml"
    shutil.copy(FAST_POLICY, policy)
    signing_key = tmp / "audit-signing-key.pem"
    write_key_pair(signing_key)
    # Docker mounts the file as it is: the services' user (uid 10001) must read it.
    # On a real host, chown it to 10001 instead.
    signing_key.chmod(0o644)
    witness_key = tmp / "witness-key.pem"
    write_key_pair(witness_key)
    witness_key.chmod(0o644)
    witness_public = load_private_key(witness_key).public_key()
    jwks = JwksServer()
    env = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        **{f"{s.upper()}_DB_PASSWORD": secrets.token_hex(16) for s in SERVICES},
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(16),
        "AUTH_ISSUER": api.ISSUER,
        "AUTH_AUDIENCE": api.AUDIENCE,
        "AUTH_JWKS_URL": jwks.url,
        "INTAKE_COUNTIES": "KY-111",
        "INTAKE_KAFKA_SOURCES": json.dumps({"county/KY-111": ["KY-111"]}),
        "MFC_POLICY_FILE": str(policy),
        "AUDIT_SIGNING_KEY_FILE": str(signing_key),
        "AUDIT_PUBLIC_KEY_FILE": str(signing_key.with_suffix(".pub")),
        "WITNESS_KEY_FILE": str(witness_key),
        "AUDIT_WITNESS_KEYS": json.dumps(
            [note.vkey("witness.localhost/mfc", note.COSIGNATURE_V1, witness_public)]
        ),
        "MFC_KAFKA_PORT": str(free_port()),
        "MFC_KAFKA_CONTROLLER_PORT": str(free_port()),
        "MFC_POSTGRES_PORT": str(free_port()),
        "MFC_SMTP_PORT": str(free_port()),
        # The console: sign-in is not exercised here (the browser tests do that on
        # the development stack); the page and its readiness are.
        "CONSOLE_OIDC_ISSUER_URL": jwks.url,
        "CONSOLE_OIDC_CLIENT_ID": "mfc-console",
        "CONSOLE_SESSION_SECRET": secrets.token_hex(32),
        "CONSOLE_SESSION_HTTPS_ONLY": "false",
    }
    env_file = tmp / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    stack = ComposeStack(f"mfctest{uuid4().hex[:8]}", env_file, env)
    try:
        stack.run("up", "-d", "--no-build")
        yield stack
    finally:
        try:
            (tmp / "compose.log").write_text(
                stack.run("logs", "--no-color", "--timestamps")
            )
        finally:
            stack.run("down", "--volumes", "--timeout", "10")
            jwks.close()


def wait_until_healthy(stack: ComposeStack, within: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        containers = stack.containers()
        states = {
            name: c["State"].get("Health", {}).get("Status")
            for name, c in containers.items()
        }
        if set(states.values()) == {"healthy"}:
            return containers
        assert time.monotonic() < deadline, f"not healthy: {states}"
        time.sleep(2)


def test_every_container_becomes_healthy(compose):
    containers = wait_until_healthy(compose)
    compose_file = yaml.safe_load(FILES[0].read_text())
    assert set(containers) == set(compose_file["services"]) - {"grafana"}
    for name, container in containers.items():
        assert container["HostConfig"]["NetworkMode"] == "host", name
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert container["Config"]["Image"].startswith("local/"), name
        if name.split("-")[0] in (*SERVICES, "console"):
            assert container["Config"]["User"] == "mfc", name
    for name in PORTS:
        path = "/-/ready" if name == "prometheus" else "/readyz"
        answer = api.get(f"{compose.url(name)}{path}", anonymous=True, timeout=5)
        assert answer.status_code == 200, (name, answer.text)
    welcome = api.get(compose.url("console"), anonymous=True, timeout=5)
    assert "Sign in" in welcome.text


def report(stack: ComposeStack, intake: str = "intake") -> str:
    answer = api.post(
        f"{stack.url(intake)}/v1/episodes",
        json=report_of_now(),
        headers=headers(),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    episode_id: str = answer.json()["id"]
    return episode_id


def obligations(stack: ComposeStack, episode_id: str) -> list[dict[str, Any]]:
    answer = api.get(
        f"{stack.url('notifier')}/v1/obligations",
        params={"episode_id": episode_id},
        headers=headers(),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()
    return result


def trail_types(stack: ComposeStack, episode_id: str) -> Counter[str]:
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/entries",
        params={"episode_id": episode_id, "limit": 1000},
        headers=headers(),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return Counter(e["type"] for e in answer.json()["entries"])


def test_the_golden_scenario_runs_through_the_deployment(compose):
    wait_until_healthy(compose)
    episode_id = report(compose)
    for attempt in eventually(60):
        with attempt:
            opened = {o["kind"]: o for o in obligations(compose, episode_id)}
            assert set(opened) == {"law_enforcement_report", "ncmec_report"}

    # The escalation reached the caseworker by email, through the mail catcher.
    for attempt in eventually(60):
        with attempt:
            mails = [m for m in compose.emails() if episode_id in m["body"]]
            assert "cw@example.org" in {m["to"] for m in mails}
    assert all("Testchild" not in m["body"] for m in mails)

    now = datetime.now(UTC).isoformat()
    for recipient, extra in (
        ("law_enforcement", {"reference_number": "DPD-1"}),
        ("ncmec", {"reference_number": "NCMEC-1"}),
    ):
        answer = api.post(
            f"{compose.url('intake')}/v1/episodes/{episode_id}/notifications",
            json={
                "recipient": recipient,
                "method": "phone",
                "notified_at": now,
                "notified_by": "cw-1",
                **extra,
            },
            headers=headers(),
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
    for attempt in eventually(60):
        with attempt:
            statuses = {
                o["kind"]: o["status"] for o in obligations(compose, episode_id)
            }
            assert statuses == {
                "law_enforcement_report": "satisfied",
                "ncmec_report": "satisfied",
            }

    for attempt in eventually(60):
        with attempt:
            types = trail_types(compose, episode_id)
            assert types["mfc.episode.reported"] == 1
            assert types["mfc.notification.recorded"] == 2
            assert types["mfc.obligation.opened"] == 2
            assert types["mfc.obligation.satisfied"] == 2
            assert types["mfc.alert.sent"] >= 1
    # The deployment's witness co-signs the checkpoint the audit signs.
    audit = compose.url("audit")
    signed = api.post(f"{audit}/v1/audit/checkpoints", headers=headers(), timeout=60)
    assert signed.status_code == 201, signed.text
    newest = api.get(
        f"{audit}/v1/audit/checkpoints",
        params={"limit": 1},
        headers=headers(),
        timeout=10,
    ).json()["checkpoints"][0]
    assert "\u2014 witness.localhost/mfc " in newest["note"], newest
    verified = api.get(
        f"{audit}/v1/audit/verify", headers=headers(), timeout=120
    ).json()
    assert verified["ok"], verified["problems"]
    assert verified["witnessed_size"] >= signed.json()["tree_size"]


def test_prometheus_scrapes_every_service_and_loads_every_alert_rule(compose):
    wait_until_healthy(compose)
    prometheus = compose.url("prometheus")
    for attempt in eventually(90):
        with attempt:
            targets = api.get(
                f"{prometheus}/api/v1/targets", anonymous=True, timeout=5
            ).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            assert health == dict.fromkeys((*SERVICES, "console"), "up")
    rules = api.get(f"{prometheus}/api/v1/rules", anonymous=True, timeout=5).json()
    loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    expected = {
        rule["alert"]
        for group in yaml.safe_load(
            (ROOT / "deploy/prometheus/alerts.yml").read_text()
        )["groups"]
        for rule in group["rules"]
    }
    assert loaded == expected
    for attempt in eventually(60):
        with attempt:
            answer = api.get(
                f"{prometheus}/api/v1/query",
                params={"query": 'count by (job) ({__name__=~"mfc_.+"})'},
                anonymous=True,
                timeout=5,
            ).json()
            jobs = {r["metric"]["job"] for r in answer["data"]["result"]}
            assert jobs == {*SERVICES, "console"}, answer


def test_two_replicas_of_each_service_share_the_work_and_do_nothing_twice(compose):
    wait_until_healthy(compose)
    episodes = [report(compose, "intake" if i % 2 else "intake-2") for i in range(16)]
    for attempt in eventually(90):
        with attempt:
            for episode_id in episodes:
                kinds = [o["kind"] for o in obligations(compose, episode_id)]
                assert sorted(kinds) == ["law_enforcement_report", "ncmec_report"]
                types = trail_types(compose, episode_id)
                assert types["mfc.episode.reported"] == 1
                assert types["mfc.obligation.opened"] == 2

    # Each alert step was raised once, and each delivery (one alert to one address)
    # arrived once: X-MFC-Delivery is its id. A breach repeats, so subjects recur.
    for attempt in eventually(60):
        with attempt:
            mails = compose.emails()
            for episode_id in episodes:
                alerts = api.get(
                    f"{compose.url('notifier-2')}/v1/alerts",
                    params={"episode_id": episode_id},
                    headers=headers(),
                    timeout=5,
                ).json()
                steps = Counter((a["obligation_id"], a["step_key"]) for a in alerts)
                assert steps, episode_id
                assert max(steps.values()) == 1, steps
                sent = Counter(m["delivery"] for m in mails if episode_id in m["body"])
                assert sent, episode_id
                assert max(sent.values()) == 1, sent
                assert {m["to"] for m in mails if episode_id in m["body"]} >= {
                    "cw@example.org"
                }

    # The work was shared: both replicas of each consumer handled messages.
    for service in ("notifier", "followup", "audit"):
        for replica in (service, f"{service}-2"):
            assert messages_handled(compose.url(replica)) > 0, replica


def test_each_service_works_as_its_own_least_privileged_role(compose):
    wait_until_healthy(compose)
    sessions = compose.sql(
        "SELECT DISTINCT application_name || ' ' || usename FROM pg_stat_activity"
        " WHERE application_name LIKE 'mfc-%'"
    )
    assert {f"mfc-{s} mfc_{s}" for s in SERVICES} <= set(sessions), sessions
    for service in SERVICES:
        role = f"mfc_{service}"
        flags = compose.sql(
            f"SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
            f" WHERE rolname = '{role}'"
        )
        assert flags == ["f|f|f"], (role, flags)
        owner = compose.sql(
            f"SELECT nspowner::regrole FROM pg_namespace WHERE nspname = '{service}'"
        )
        assert owner == [role]
        for other in SERVICES:
            if other != service:
                usage = compose.sql(
                    f"SELECT has_schema_privilege('{role}', '{other}', 'USAGE')"
                )
                assert usage == ["f"], (role, other)
        assert compose.sql(
            f"SELECT has_database_privilege('{role}', 'mfc', 'CREATE')"
        ) == ["f"]
        assert compose.sql(
            f"SELECT has_schema_privilege('{role}', 'public', 'CREATE')"
        ) == ["f"]
    # The audit trail's writer may read and append, never rewrite.
    assert compose.sql(
        "SELECT has_table_privilege('audit_appender', 'audit.log_entries', 'INSERT'),"
        " has_table_privilege('audit_appender', 'audit.log_entries', 'UPDATE'),"
        " has_table_privilege('audit_appender', 'audit.log_entries', 'DELETE')"
    ) == ["t|f|f"]
