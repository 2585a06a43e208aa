"""A county auditor's proof bundle through the real stack (issue 22, parts 4 and
5): their counties and period with inclusion proofs against a signed checkpoint,
verified offline with the CLI, and the whole compliance report (both views)
recomputed from it byte for byte."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.cli import main as mfc
from tests import api
from tests.e2e.test_audit import notify_law_enforcement, report, trail
from tests.e2e.test_walking_skeleton import eventually

NC_AUDITOR = api.bearer("auditor", "auditor_pii", counties=["NC-063"])


def test_a_county_auditor_verifies_their_bundle_and_recomputes_compliance(
    stack, tmp_path: Path, capsys
):
    since = datetime.now(UTC) - timedelta(hours=1)  # clock starts from then on
    episode_id = report(stack, learned_ago=timedelta(minutes=20))
    notify_law_enforcement(stack, episode_id)
    for attempt in eventually(60):
        with attempt:
            types = [e["type"] for e in trail(stack, episode_id)]
            assert "mfc.obligation.satisfied" in types
    audit = stack.url("audit")
    signed = api.post(f"{audit}/v1/audit/checkpoints", timeout=30)
    assert signed.status_code == 201, signed.text

    # Entries from a little before the clock starts chosen below (a county's clock
    # may run 5 minutes ahead), so every event of those obligations is in it.
    scope = {"from": (since - timedelta(minutes=10)).isoformat()}
    answer = api.get(
        f"{audit}/v1/audit/bundle", params=scope, headers=NC_AUDITOR, timeout=120
    )
    assert answer.status_code == 200, answer.text
    path = tmp_path / "bundle.json"
    path.write_bytes(answer.content)
    document = json.loads(answer.content)
    assert document["scope"]["counties"] == ["NC-063"]
    counties = {e["county_code"] for e in document["entries"]}
    assert counties <= {"NC-063", None}
    assert episode_id in answer.text
    kinds = {e["event"]["type"] for e in document["entries"]}
    assert {"mfc.policy.adopted", "mfc.episode.reported"} <= kinds

    public_key = tmp_path / "public.pem"
    public_key.write_bytes(api.get(f"{audit}/v1/audit/public-key", timeout=10).content)
    capsys.readouterr()
    args = ["audit", "verify", "--bundle", str(path), "--public-key", str(public_key)]
    code = mfc(args)
    result = json.loads(capsys.readouterr().out)
    assert (code, result["ok"]) == (0, True), result["problems"]
    assert result["entries"] == result["checked_by_content"] == len(document["entries"])

    # One byte changed: refused, naming the entry.
    tampered = answer.content.replace(
        episode_id.encode(), episode_id[:-1].encode() + b"0", 1
    )
    if tampered == answer.content:  # the id ended in 0
        tampered = answer.content.replace(
            episode_id.encode(), episode_id[:-1].encode() + b"1", 1
        )
    bad = tmp_path / "tampered.json"
    bad.write_bytes(tampered)
    capsys.readouterr()
    assert mfc([*args[:3], str(bad), *args[4:]]) == 1
    captured = capsys.readouterr()
    assert "its content does not match its hash" in captured.err

    # The compliance report, both views, from the bundle alone: the online bytes.
    as_of = datetime.now(UTC).isoformat()
    chosen = {
        "county": "NC-063",
        "from": since.isoformat(),
        "as_of": as_of,
        "tree_size": document["checkpoint"]["tree_size"],  # what the bundle proves
    }
    for view in ("obligations", "crosscheck"):
        online = api.get(
            f"{audit}/v1/audit/compliance",
            params={**chosen, "format": "csv", "view": view},
            headers=NC_AUDITOR,
            timeout=60,
        )
        assert online.status_code == 200, online.text
        assert episode_id in online.text
        capsys.readouterr()
        offline = [
            "audit", "compliance", "--offline", str(path), "--county", "NC-063",
            "--from", since.isoformat(), "--as-of", as_of, "--view", view,
        ]  # fmt: skip
        assert mfc(offline) == 0
        assert capsys.readouterr().out.encode() == online.content, view
