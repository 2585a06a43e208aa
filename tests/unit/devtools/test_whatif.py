"""``mfc policy what-if`` on a trail built from canonical events: a candidate that
shortens New York's law-enforcement deadline from 24 h to 12 h shows exactly the
episodes whose notices would then have been late, and nothing else."""

import json
from pathlib import Path
from uuid import uuid4

import pytest

from devtools.cli import main
from devtools.whatif import WhatIfError, read_trail
from shared import topics
from shared.adoption import adopted
from shared.clock import ManualClock
from shared.events import CloudEvent
from shared.policy import default_policy_path, parse_policy
from tests.unit.notifier.builders import START, H, closed, located, notified, reported

SHIPPED = default_policy_path().read_bytes()
CANDIDATE = SHIPPED.replace(
    b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\n',
    b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\ndue = "12h"\n',
)


def entry(event: CloudEvent, *, topic: str = topics.EPISODES) -> str:
    document = json.loads(event.model_dump_json(exclude_none=True))
    return json.dumps({"topic": topic, "redacted": False, "event": document})


def episode(county: str, notice_after_hours: float | None) -> list[str]:
    """Reported at START; law enforcement told after so many hours (or never);
    located after two days and closed after three."""
    ids = (uuid4(), county)
    events = [reported(ids)]
    if notice_after_hours is not None:
        at = START + notice_after_hours * H
        events.append(notified(ids, at, "law_enforcement", reference_number="LE-1"))
    events += [located(ids, START + 48 * H), closed(ids, START + 72 * H)]
    return [entry(e) for e in events]


@pytest.fixture
def trail(tmp_path):
    episodes = {
        "ny_early": episode("NY-061", 6),  # met under both
        "ny_between": episode("NY-061", 18),  # met at 24 h, late at 12 h
        "ny_late": episode("NY-061", 30),  # late under both
        "ny_never": episode("NY-061", None),  # missing under both
        "nc_between": episode("NC-063", 18),  # North Carolina: unchanged
    }
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(line for lines in episodes.values() for line in lines))
    ids = {
        name: json.loads(lines[0])["event"]["subject"]
        for name, lines in episodes.items()
    }
    candidate = tmp_path / "candidate.toml"
    candidate.write_bytes(CANDIDATE)
    return path, candidate, ids


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["policy", "what-if", *args])
    return code, capsys.readouterr().out


def what_if_json(capsys, candidate: Path, export: Path, *args: str) -> dict:
    """``mfc policy what-if --format json``'s answer; it must succeed."""
    capsys.readouterr()
    code, out = run(
        capsys,
        "--candidate",
        str(candidate),
        "--export",
        str(export),
        "--format",
        "json",
        *args,
    )
    assert code == 0
    result: dict = json.loads(out)
    return result


def test_a_shorter_deadline_shows_exactly_the_notices_that_would_be_late(trail, capsys):
    export, candidate, ids = trail
    result = what_if_json(capsys, candidate, export)
    assert result["episodes"] == 5
    law = [c for c in result["changes"] if c["kind"] == "law_enforcement_report"]
    ny = {ids[name] for name in ("ny_early", "ny_between", "ny_late", "ny_never")}
    # Every NY law-enforcement duty moves 12 h earlier; NC's does not move.
    assert {c["episode_id"] for c in law} == ny
    assert {c["change"] for c in law} == {"earlier"}
    assert {c["due_shift_seconds"] for c in law} == {-12 * 3600}
    # Only the notice given after 18 h changes outcome: met -> late.
    flipped = [c for c in law if c["in_force_outcome"] != c["candidate_outcome"]]
    assert [
        (c["episode_id"], c["in_force_outcome"], c["candidate_outcome"])
        for c in flipped
    ] == [(ids["ny_between"], "met", "late")]
    # Nothing else about any episode differs.
    assert {c["kind"] for c in result["changes"]} == {"law_enforcement_report"}
    before, after = result["totals"]["in_force"], result["totals"]["candidate"]
    assert (after["met"], after["late"]) == (before["met"] - 1, before["late"] + 1)
    assert after["required"] == before["required"]


def test_the_table_names_the_episode_and_the_csv_lists_every_obligation(trail, capsys):
    export, candidate, ids = trail
    code, table = run(capsys, "--candidate", str(candidate), "--export", str(export))
    assert code == 0
    assert "met on time" in table
    assert (
        f"{ids['ny_between']}  NY-061  law_enforcement_report: due earlier by 12 h;"
        in table
    )
    assert "met -> late" in table
    assert (
        "law_enforcement_report in NY-061: 4 owed, 2 met, 1 late, 1 missing -> "
        "4 owed, 1 met, 2 late, 1 missing"
    ) in table
    assert "ncmec_report in NY-061" not in table  # unchanged duties are left out
    code, text = run(
        capsys,
        "--candidate",
        str(candidate),
        "--export",
        str(export),
        "--format",
        "csv",
    )
    rows = text.splitlines()
    assert rows[0].startswith("episode_id,county_code,kind,change")
    # Every obligation of the five episodes, changed or not: LE, NCMEC, two
    # recovery notices each, and North Carolina's written LE report.
    assert len(rows) - 1 == 5 * 4 + 1


def test_a_period_and_counties_choose_the_episodes(trail, capsys):
    export, candidate, _ = trail
    args = ["--candidate", str(candidate), "--export", str(export), "--format", "json"]
    _, out = run(capsys, *args, "--county", "NC-063")
    assert json.loads(out)["episodes"] == 1
    assert json.loads(out)["changes"] == []
    _, out = run(capsys, *args, "--from", (START + H).isoformat())
    assert json.loads(out)["episodes"] == 0


def opened(episode_id: str, kind: str, due_hours: float, digest: str) -> str:
    """An ``mfc.obligation.opened`` entry as the notifier writes it to the trail."""
    clock = START + (48 * H if kind.startswith("recovery") else 0 * H)
    event = CloudEvent.new(
        type="mfc.obligation.opened",
        source="test/notifier",
        subject=episode_id,
        time=clock,
        data={
            "obligation_id": str(uuid4()),
            "episode_id": episode_id,
            "county_code": "NY-061",
            "kind": kind,
            "clock_start": clock.isoformat(),
            "due_at": (START + due_hours * H).isoformat(),
            "policy_digest": digest,
        },
    )
    return entry(event, topic=topics.OBLIGATIONS)


def test_the_replay_is_checked_against_what_the_notifier_recorded(trail, capsys):
    """The export holds the notifier's own obligation events: the replay under the
    policy they name must give the same duties and due times, or the tool says so;
    a policy version not given is named too."""
    export, candidate, ids = trail
    shipped = parse_policy(SHIPPED).digest
    as_recorded = {
        "law_enforcement_report": 24,
        "ncmec_report": 24,
        "recovery_notice_le": 72,
        "recovery_notice_ncmec": 72,
    }
    lines = [opened(ids["ny_early"], k, h, shipped) for k, h in as_recorded.items()]
    wrong = as_recorded | {"law_enforcement_report": 20}
    lines += [opened(ids["ny_late"], k, h, shipped) for k, h in wrong.items()]
    lines += [opened(ids["ny_never"], "ncmec_report", 24, "0" * 64)]
    with export.open("a") as out:
        out.write("\n" + "\n".join(lines))
    result = what_if_json(capsys, candidate, export)
    differs = set(result["replay_differs_from_recorded"])
    assert differs == {ids["ny_late"], ids["ny_never"]}
    assert result["unknown_digests"] == {"0" * 64: 1}
    assert result["ran_under"] == {shipped: 5}
    _, table = run(capsys, "--candidate", str(candidate), "--export", str(export))
    assert "1 episodes ran under a policy not given (sha256 000000000000)" in table
    assert "for 2 episodes the replay under the policy in force differs" in table


def test_a_redacted_export_is_refused_with_what_to_do(tmp_path, capsys):
    line = json.loads(episode("NY-061", 6)[0])
    line["redacted"] = True
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(line))
    with pytest.raises(WhatIfError, match="auditor_pii"):
        read_trail(export.read_text().splitlines(), origin="export.jsonl")
    code = main(
        [
            "policy",
            "what-if",
            "--candidate",
            str(default_policy_path()),
            "--export",
            str(export),
        ]
    )
    assert code == 1
    assert "auditor_pii" in capsys.readouterr().err


def test_the_candidate_must_load(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(SHIPPED + b'\n[jurisdictions.XX]\nname = "nowhere"\n')
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(episode("NY-061", 6)))
    code = main(["policy", "what-if", "--candidate", str(bad), "--export", str(export)])
    assert code == 1
    assert "unknown state code 'XX'" in capsys.readouterr().err


def test_policy_check_says_valid_or_why_not(tmp_path, capsys):
    assert main(["policy", "check", str(default_policy_path())]) == 0
    assert "valid (sha256 " in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_bytes(
        SHIPPED.replace(b'due = "2 business days"', b'due = "2 business dayz"')
    )
    assert main(["policy", "check", str(bad)]) == 1
    assert "court_runaway_report: due" in capsys.readouterr().err


def test_the_version_an_episode_ran_under_comes_from_the_trail(trail, capsys):
    """The trail archives each policy version (``mfc.policy.adopted``); an episode
    whose obligations name an archived digest is replayed under that version, not
    under the file given on the command line."""
    export, candidate, ids = trail
    older = parse_policy(
        SHIPPED.replace(
            b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\n',
            b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\n'
            b'due = "20h"\n',
        ),
        origin="older.toml",
    )
    archived = adopted(older, source="test/notifier", clock=ManualClock(START))
    with export.open("a") as out:
        out.write("\n" + entry(archived, topic=topics.POLICIES))
        out.write(
            "\n" + opened(ids["ny_between"], "law_enforcement_report", 20, older.digest)
        )
    result = what_if_json(capsys, candidate, export)
    assert result["ran_under"][older.digest] == 1
    assert result["unknown_digests"] == {}
    [between] = [
        c
        for c in result["changes"]
        if c["episode_id"] == ids["ny_between"]
        and c["kind"] == "law_enforcement_report"
    ]
    # Under the archived 20 h rule the 18 h notice was met; 12 h makes it late.
    assert between["due_shift_seconds"] == -8 * 3600
    assert (between["in_force_outcome"], between["candidate_outcome"]) == (
        "met",
        "late",
    )


def test_an_export_out_of_order_or_repeated_replays_in_log_order_once(trail, capsys):
    """Lines of a concatenated or re-paged export may come out of order or twice:
    entries are taken by ``seq``, each event once."""
    export, candidate, _ = trail
    expected = what_if_json(capsys, candidate, export)
    lines = [
        json.dumps({**json.loads(line), "seq": seq})
        for seq, line in enumerate(export.read_text().splitlines(), start=1)
    ]
    export.write_text("\n".join([*reversed(lines), *lines[:7]]))
    assert what_if_json(capsys, candidate, export) == expected


def test_events_whose_report_is_not_in_the_export_are_named(tmp_path, capsys):
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(episode("NY-061", 6)[1:] + episode("NY-061", 6)))
    args = ["--candidate", str(default_policy_path()), "--export", str(export)]
    assert main(["policy", "what-if", *args, "--format", "json"]) == 0
    assert "3 events of episodes whose report is not" in capsys.readouterr().err
