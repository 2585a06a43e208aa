"""The audit service in the whole system: the trail of real episodes redacts the
child, verifies against signed checkpoints (online and with the offline CLI on an
export), and yields the compliance report of their deadlines."""

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.domain import merkle
from devtools.cli import main as mfc
from shared.policy import default_policy_path, load_policy
from tests import api
from tests.conftest import make_report
from tests.e2e.test_walking_skeleton import eventually
from tests.unit.devtools.test_whatif import CANDIDATE, what_if_json


def report(stack, learned_ago: timedelta) -> str:
    learned = datetime.now(UTC) - learned_ago
    body = make_report(
        last_seen_at=(learned - timedelta(hours=2)).isoformat(),
        discovered_at=(learned - timedelta(hours=1)).isoformat(),
        agency_learned_at=learned.isoformat(),
    )
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    episode_id: str = answer.json()["id"]
    return episode_id


def notify_law_enforcement(stack, episode_id: str) -> datetime:
    notified_at = datetime.now(UTC)
    answer = api.post(
        f"{stack.url('intake')}/v1/episodes/{episode_id}/notifications",
        json={
            "recipient": "law_enforcement",
            "method": "phone",
            "notified_at": notified_at.isoformat(),
            "notified_by": "cw-1",
            "reference_number": "LE-2026-0001",
        },
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text
    return notified_at


def trail(stack, episode_id: str) -> list[dict]:
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/episodes/{episode_id}/trail", timeout=10
    )
    assert answer.status_code == 200, answer.text
    entries: list[dict] = answer.json()["entries"]
    return entries


def test_compliance_comes_from_the_trail_of_real_episodes(stack):
    on_time = report(stack, learned_ago=timedelta(minutes=30))
    late = report(stack, learned_ago=timedelta(hours=3))  # NC: 2 h for law enforcement
    notified = {e: notify_law_enforcement(stack, e) for e in (on_time, late)}
    for attempt in eventually(60):
        with attempt:
            for episode_id in (on_time, late):
                types = [e["type"] for e in trail(stack, episode_id)]
                assert "mfc.obligation.satisfied" in types

    answer = api.get(
        f"{stack.url('audit')}/v1/audit/compliance",
        params={"county": "NC-063"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    episodes = {e["episode_id"]: e for e in answer.json()["episodes"]}
    outcomes = {
        episode_id: {o["kind"]: o for o in episodes[episode_id]["obligations"]}
        for episode_id in (on_time, late)
    }
    assert outcomes[on_time]["law_enforcement_report"]["outcome"] == "met"
    assert outcomes[late]["law_enforcement_report"]["outcome"] == "late"
    assert outcomes[on_time]["ncmec_report"]["outcome"] == "pending"
    seconds = outcomes[late]["law_enforcement_report"]["seconds_to_notice"]
    assert abs(seconds - 3 * 3600) < 60
    assert outcomes[late]["law_enforcement_report"]["notified_at"] == (
        notified[late].isoformat()
    )
    assert answer.json()["total"]["late"] >= 1

    csv_text = api.get(
        f"{stack.url('audit')}/v1/audit/compliance",
        params={"county": "NC-063", "format": "csv"},
        timeout=30,
    ).text
    assert csv_text.splitlines()[0].startswith("episode_id,county_code,obligation_id")
    assert any(
        line.startswith(late) and ",late," in line for line in csv_text.splitlines()
    )


def test_the_trail_is_redacted_and_verifies_online_and_offline(
    stack, tmp_path: Path, capsys
):
    episode_id = report(stack, learned_ago=timedelta(minutes=5))
    for attempt in eventually(30):
        with attempt:
            entries = trail(stack, episode_id)
            # Each topic reaches the audit on its own: wait for both entries.
            types = {e["type"] for e in entries}
            assert {"mfc.episode.reported", "mfc.obligation.opened"} <= types, types
    reported = next(e for e in entries if e["type"] == "mfc.episode.reported")
    assert reported["redacted"] is True
    assert reported["event"]["data"]["child"]["last_name"] == "[redacted]"
    assert "Testchild" not in json.dumps(entries)

    audit = stack.url("audit")
    signed = api.post(f"{audit}/v1/audit/checkpoints", timeout=30).json()
    proof = api.get(
        f"{audit}/v1/audit/proof/{reported['seq']}",
        params={"tree_size": signed["tree_size"]},
        timeout=10,
    ).json()
    assert merkle.verify_inclusion(
        leaf=base64.b64decode(reported["leaf_hash"]),
        index=reported["seq"] - 1,
        size=signed["tree_size"],
        path=[base64.b64decode(h) for h in proof["audit_path"]],
        root=base64.b64decode(signed["root_hash"]),
    )
    verified = api.get(f"{audit}/v1/audit/verify", timeout=120).json()
    assert verified["ok"], verified["problems"]
    assert verified["tree_size"] >= signed["tree_size"]

    # Checkpoints first: every one of them then covers a prefix of the export.
    checkpoints = tmp_path / "checkpoints.json"
    checkpoints.write_text(
        api.get(
            f"{audit}/v1/audit/checkpoints", params={"limit": 1000}, timeout=10
        ).text
    )
    export = tmp_path / "export.jsonl"
    export.write_bytes(
        api.get(
            f"{audit}/v1/audit/entries", params={"format": "jsonl"}, timeout=120
        ).content
    )
    public_key = tmp_path / "public.pem"
    public_key.write_bytes(api.get(f"{audit}/v1/audit/public-key", timeout=10).content)
    capsys.readouterr()
    code = mfc(
        [
            "audit",
            "verify",
            "--entries",
            str(export),
            "--checkpoints",
            str(checkpoints),
            "--public-key",
            str(public_key),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["ok"]) == (0, True), result["problems"]
    assert result["contents_checked"] < result["tree_size"]  # redacted: hash only


def test_what_if_replays_the_real_trail_under_a_shorter_deadline(
    stack, tmp_path: Path, capsys
):
    """``mfc policy what-if`` on an export of the real trail: New York's law
    enforcement deadline cut from 24 h to 12 h turns the notice given 18 h after the
    agency learned into a late one, leaves the one given after 1 h met, and its
    replay under the policy in force equals what the notifier really opened."""
    episodes = {}
    for name, notice_after in (("prompt", 1), ("slow", 18)):
        learned = datetime.now(UTC) - timedelta(hours=20)
        body = make_report(
            county_code="NY-061",
            last_seen_at=(learned - timedelta(hours=2)).isoformat(),
            discovered_at=(learned - timedelta(hours=1)).isoformat(),
            agency_learned_at=learned.isoformat(),
        )
        answer = api.post(f"{stack.url('intake')}/v1/episodes", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        episodes[name] = answer.json()["id"]
        notice = api.post(
            f"{stack.url('intake')}/v1/episodes/{episodes[name]}/notifications",
            json={
                "recipient": "law_enforcement",
                "method": "phone",
                "notified_at": (learned + timedelta(hours=notice_after)).isoformat(),
                "notified_by": "cw-1",
            },
            timeout=10,
        )
        assert notice.status_code in (200, 201), notice.text
    for attempt in eventually(60):
        with attempt:
            for episode_id in episodes.values():
                types = [e["type"] for e in trail(stack, episode_id)]
                assert "mfc.obligation.satisfied" in types

    export = tmp_path / "export.jsonl"
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/entries",
        params={"county": "NY-061", "format": "jsonl"},
        headers=api.bearer("auditor_pii", counties=["NY-061"]),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    export.write_text(answer.text)
    candidate = tmp_path / "candidate.toml"
    candidate.write_bytes(CANDIDATE)  # New York's law enforcement in 12 h
    result = what_if_json(capsys, candidate, export)
    assert result["replay_differs_from_recorded"] == []
    assert result["ran_under"] == {
        load_policy(default_policy_path()).digest: len(episodes)
    }
    outcomes = {
        c["episode_id"]: (c["change"], c["in_force_outcome"], c["candidate_outcome"])
        for c in result["changes"]
        if c["kind"] == "law_enforcement_report"
    }
    assert outcomes == {
        episodes["prompt"]: ("earlier", "met", "met"),
        episodes["slow"]: ("earlier", "met", "late"),
    }


def test_the_compliance_report_is_recomputed_offline_byte_for_byte(
    stack, tmp_path: Path, capsys
):
    """Issue 22, part 4 (the notifier's view): ``mfc audit compliance`` on an export
    gives the online report's CSV byte for byte, judged at the same moment."""
    episode_id = report(stack, learned_ago=timedelta(hours=3))
    notify_law_enforcement(stack, episode_id)
    for attempt in eventually(60):
        with attempt:
            types = [e["type"] for e in trail(stack, episode_id)]
            assert "mfc.obligation.satisfied" in types
    as_of = datetime.now(UTC).isoformat()
    scope = {"county": "NC-063", "as_of": as_of}
    online = api.get(
        f"{stack.url('audit')}/v1/audit/compliance",
        params={**scope, "format": "csv"},
        timeout=30,
    )
    assert online.status_code == 200, online.text
    assert episode_id in online.text
    export = tmp_path / "export.jsonl"
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/entries",
        params={"county": "NC-063", "format": "jsonl"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    export.write_text(answer.text)
    capsys.readouterr()
    args = ["audit", "compliance", "--export", str(export), "--county", "NC-063"]
    assert mfc([*args, "--as-of", as_of]) == 0
    assert capsys.readouterr().out.encode() == online.content
