"""``mfc audit policy``: the policy files an export holds, checked by their digest."""

import json

import pytest

from audit.cli import policies_in_export
from devtools.cli import main
from shared.adoption import adopted
from shared.clock import SystemClock
from shared.policy import default_policy_path, load_policy

POLICY = load_policy(default_policy_path())


def export_line(content_change: bytes = b"") -> str:
    event = json.loads(
        adopted(POLICY, source="t", clock=SystemClock()).model_dump_json()
    )
    event["data"]["content"] += content_change.decode()
    return json.dumps({"seq": 7, "topic": "mfc.policies.v1", "event": event})


def test_an_export_gives_back_each_policy_by_digest(tmp_path, capsys):
    export = tmp_path / "export.jsonl"
    export.write_text(export_line() + "\n" + export_line() + "\n")
    assert list(policies_in_export(export.read_text().splitlines())) == [POLICY.digest]
    assert main(["audit", "policy", "--export", str(export), POLICY.digest]) == 0
    assert capsys.readouterr().out == POLICY.content.decode()
    assert main(["audit", "policy", "--export", str(export)]) == 0
    assert capsys.readouterr().out.startswith(
        f"{POLICY.digest}  {POLICY.document.version}"
    )
    assert main(["audit", "policy", "--export", str(export), "0" * 64]) == 1
    assert "no policy with sha256 " in capsys.readouterr().err


def test_content_that_does_not_match_its_digest_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="entry 7: the policy content's sha256 is"):
        policies_in_export([export_line(b"\n# changed\n")])
    export = tmp_path / "export.jsonl"
    export.write_text(export_line(b"# changed"))
    assert main(["audit", "policy", "--export", str(export)]) == 2
    assert "not the digest it claims" in capsys.readouterr().err


def test_an_export_that_is_not_json_lines_is_refused_not_a_traceback(tmp_path, capsys):
    export = tmp_path / "export.jsonl"
    export.write_text(
        '{"event": {"type": "mfc.obligation.opened", "data": {"obligation_id": "x"}}}\nnot json\n'
    )
    assert main(["audit", "compliance", "--export", str(export)]) == 2
    assert "mfc audit compliance:" in capsys.readouterr().err
