"""``mfc dev``, the README's run command, as a person uses it: it comes up, serves
the walking skeleton, stops cleanly on SIGTERM, and keeps its data for next time."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import httpx

from devtools.devstack import SERVICE_NAMES, free_port
from tests import api
from tests.conftest import make_report
from tests.e2e.test_walking_skeleton import eventually


def start(
    data_dir: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.cli", "dev", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("mfc dev ended early:\n" + "".join(lines[-40:]))
        lines.append(line)
        if "Ctrl-C stops everything." in line:
            return process, lines
    raise AssertionError("mfc dev did not come up:\n" + "".join(lines[-40:]))


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    return rest


def mfc_token(data_dir: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    """A bearer header from `mfc token`, signed with the key `mfc dev` made."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.cli",
            "token",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


def test_mfc_dev_runs_stops_cleanly_and_keeps_its_data(tmp_path):
    """Also the development tokens: without an identity provider configured, `mfc
    dev` makes a token key and `mfc token` signs with it."""
    ports = {name: free_port() for name in SERVICE_NAMES}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}
        and not key.startswith("AUTH_")
    }
    env.update({f"{n.upper()}_HTTP_PORT": str(p) for n, p in ports.items()})
    env["WITNESS_HTTP_PORT"] = str(free_port())
    env["MFC_KAFKA_PORT"] = str(free_port())
    front = {
        "CONSOLE_HTTP_PORT": free_port(),
        "MFC_IDP_PORT": free_port(),
        "MFC_SMTP_PORT": free_port(),
        "MFC_MAIL_UI_PORT": free_port(),
    }
    env.update({k: str(v) for k, v in front.items()})
    intake = f"http://127.0.0.1:{ports['intake']}"

    process, lines = start(tmp_path / "data", env)
    try:
        banner = "".join(lines)
        for port in [*ports.values(), *front.values()]:
            assert f"127.0.0.1:{port}" in banner
        # The people's side: the console answers, the sign-in provider publishes
        # its keys, and the services trust the tokens it signs (and mfc token's).
        console = f"http://127.0.0.1:{front['CONSOLE_HTTP_PORT']}"
        assert httpx.get(f"{console}/healthz", timeout=5).status_code == 200
        assert "Sign in" in httpx.get(console, timeout=5).text
        issuer = f"http://127.0.0.1:{front['MFC_IDP_PORT']}"
        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5)
        assert discovery.json()["issuer"] == issuer
        assert "reported an invented missing child (demo)" in banner
        report = make_report()
        sender = mfc_token(
            tmp_path / "data", env, "--role", "county_system", "--county", "NC-063"
        )
        assert (
            httpx.post(f"{intake}/v1/episodes", json=report, timeout=10).status_code
            == 401
        )
        assert (
            api.post(f"{intake}/v1/episodes", json=report, timeout=10).status_code
            == 401
        ), "a token of another issuer's key is refused"
        created = httpx.post(
            f"{intake}/v1/episodes", json=report, headers=sender, timeout=10
        )
        assert created.status_code == 201
        listed = httpx.get(f"{intake}/v1/episodes", headers=sender, timeout=10)
        cases = [e["case_id"] for e in listed.json()["episodes"]]
        assert len(cases) == 2
        assert cases[0].startswith("DEMO-"), "the demo a newcomer acts on"
        auditor = mfc_token(tmp_path / "data", env, "--role", "auditor")
        for attempt in eventually():
            with attempt:
                entries = httpx.get(
                    f"http://127.0.0.1:{ports['audit']}/v1/audit/entries",
                    params={"episode_id": created.json()["id"]},
                    headers=auditor,
                    timeout=10,
                ).json()["entries"]
                assert [
                    e["type"] for e in entries if e["topic"] == "mfc.episodes.v1"
                ] == ["mfc.episode.reported"]
    finally:
        rest = stop(process)
    assert process.returncode == 0, rest
    assert "mfc dev: stopped" in rest
    assert not any(
        f":{port}"
        in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        for port in [*ports.values(), *front.values()]
    )

    # Same data directory: PostgreSQL kept the episode, and the token key stayed.
    process, _ = start(tmp_path / "data", env)
    try:
        again = httpx.get(
            f"{intake}/v1/episodes/{created.json()['id']}", headers=sender, timeout=10
        )
        assert again.status_code == 200
        assert again.json()["case_id"] == created.json()["case_id"]
    finally:
        stop(process)
    assert process.returncode == 0


def test_mfc_dev_uses_the_infrastructure_the_environment_names(infra, tmp_path):
    """With KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set, nothing is embedded: the
    services run on that broker and database (own schemas and groups here, so they
    stay out of the session stack's way)."""
    suffix = uuid4().hex[:8]
    ports = {name: free_port() for name in SERVICE_NAMES}
    env = dict(os.environ)
    env.update({f"{n.upper()}_HTTP_PORT": str(p) for n, p in ports.items()})
    env["WITNESS_HTTP_PORT"] = str(free_port())
    env.update({f"{n.upper()}_DB_SCHEMA": f"{n}_dev_{suffix}" for n in SERVICE_NAMES})
    env.update(
        {f"{n.upper()}_CONSUMER_GROUP": f"{n}-dev-{suffix}" for n in SERVICE_NAMES}
    )
    env["KAFKA_BOOTSTRAP_SERVERS"] = infra.bootstrap_servers
    env["DATABASE_URL"] = infra.database_url
    intake = f"http://127.0.0.1:{ports['intake']}"

    process, lines = start(tmp_path / "data", env)
    try:
        assert f"kafka     {infra.bootstrap_servers}" in "".join(lines)
        created = api.post(f"{intake}/v1/episodes", json=make_report(), timeout=10)
        assert created.status_code == 201
        for attempt in eventually():
            with attempt:
                entries = api.get(
                    f"http://127.0.0.1:{ports['audit']}/v1/audit/entries",
                    params={"episode_id": created.json()["id"]},
                    timeout=10,
                ).json()["entries"]
                assert "mfc.episode.reported" in [e["type"] for e in entries]
    finally:
        rest = stop(process)
    assert process.returncode == 0, rest
    assert not (tmp_path / "data" / "postgres").exists()  # nothing embedded
