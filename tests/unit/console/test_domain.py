"""The console's pure parts: words, the inbox order, the charts, the trail checks."""

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.domain.checkpoint import public_pem, sign
from audit.domain.entries import entry_leaf_hash
from audit.domain.merkle import inclusion_ranges, root_of
from console.domain import charts, proofs, words
from console.domain.inbox import inbox
from console.signin import safe_next

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_countdown_says_due_or_overdue():
    assert words.countdown(NOW + timedelta(hours=2, minutes=5), NOW) == (
        "due in 2 h 5 min",
        False,
    )
    assert words.countdown(NOW - timedelta(minutes=12, seconds=5), NOW) == (
        "overdue by 12 min 5 s",
        True,
    )
    assert words.countdown((NOW + timedelta(days=3, hours=4)).isoformat(), NOW)[0] == (
        "due in 3 d 4 h"
    )


def test_times_are_shown_in_the_agencys_zone_whatever_their_own():
    assert words.when("2026-11-30T05:10:00+02:00") == "2026-11-30 03:10 UTC"
    eastern = ZoneInfo("America/New_York")
    assert words.when("2026-11-30T03:10:00+00:00", eastern) == "2026-11-29 22:10 EST"
    assert words.when("2026-07-01T03:10:00+00:00", eastern) == "2026-06-30 23:10 EDT"
    assert words.when(None) == ""


def test_initials_and_levels_in_plain_words():
    assert words.initials("ana", "Ruiz") == "A.R."
    assert words.level_words(None) == "No alert yet"
    assert words.level_words(1, "supervisor") == "Level 2: supervisor"
    assert words.event_words("mfc.obligation.breached") == "Deadline missed"


def _obligation(i: int, due: datetime, **extra: object) -> dict[str, object]:
    return {
        "id": f"o{i}",
        "episode_id": f"e{i}",
        "county_code": "NC-063",
        "title": f"duty {i}",
        "status": "open",
        "due_at": due.isoformat(),
        "child_initials": "A.R.",
        **extra,
    }


def test_inbox_puts_the_most_overdue_first_and_leaves_closed_duties_out():
    rows = inbox(
        [
            _obligation(1, NOW + timedelta(hours=5)),
            _obligation(
                2, NOW - timedelta(hours=1), level_reached=2, last_alert_id="a2"
            ),
            _obligation(3, NOW + timedelta(minutes=30)),
            _obligation(4, NOW - timedelta(hours=3), status="satisfied"),
        ],
        {"e2": "2026-0042"},
        NOW,
    )
    assert [r.obligation_id for r in rows] == ["o2", "o3", "o1"]
    first = rows[0]
    assert first.overdue
    assert first.countdown == "overdue by 1 h 0 min"
    assert first.case_id == "2026-0042"
    assert first.level == "Level 3"
    assert first.link == "/alerts/a2"
    assert rows[1].link == "/episodes/e3"


def _row(start: str, outcome: str, taken: float | None, allowed: float = 100.0):
    return {
        "clock_start": start,
        "outcome": outcome,
        "seconds_to_notice": taken,
        "allowed_seconds": allowed,
    }


def test_on_time_share_per_month_counts_only_decided_duties():
    chart = charts.on_time_by_month(
        [
            _row("2026-10-02T00:00:00+00:00", "met", 10),
            _row("2026-10-09T00:00:00+00:00", "late", 150),
            _row("2026-11-01T00:00:00+00:00", "met", 50),
            _row("2026-11-03T00:00:00+00:00", "pending", None),
        ]
    )
    assert [(b.label, b.value_text, b.tone) for b in chart.bars] == [
        ("2026-10", "50% of 2", "bad"),
        ("2026-11", "100% of 1", "good"),
    ]
    full, half = chart.bars[1], chart.bars[0]
    assert full.height == pytest.approx(2 * half.height, abs=0.2)
    assert full.y + full.height == chart.baseline


def test_time_to_notice_buckets_by_share_of_time_allowed():
    chart = charts.time_to_notice(
        [
            _row("2026-11-01", "met", 20),
            _row("2026-11-01", "met", 20),
            _row("2026-11-01", "met", 90),
            _row("2026-11-01", "late", 150),
            _row("2026-11-01", "late", 900),
            _row("2026-11-01", "missing", None),
        ]
    )
    counts = {b.label: b.value_text for b in chart.bars}
    assert counts == {
        "≤25 %": "2",
        "≤50 %": "0",
        "≤75 %": "0",
        "≤100 %": "1",
        "≤200 %": "1",
        ">200 %": "1",
    }
    assert charts.time_to_notice([]).empty


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/alerts/1?x=2", "/alerts/1?x=2"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_returns_only_to_this_site(target, expected):
    assert safe_next(target) == expected


def _log(events):
    """A small log: entries, their leaf hashes and a signed checkpoint of it all."""
    leaves = [
        entry_leaf_hash(seq=i + 1, topic="mfc.episodes.v1", event=e)
        for i, e in enumerate(events)
    ]
    key = Ed25519PrivateKey.generate()
    checkpoint = sign(
        key, tree_size=len(leaves), root_hash=root_of(leaves), issued_at=NOW
    )
    return leaves, checkpoint, key


def _proof(leaves, seq):
    path = [root_of(leaves[lo:hi]) for lo, hi in inclusion_ranges(seq - 1, len(leaves))]
    return {
        "leaf_hash": base64.b64encode(leaves[seq - 1]).decode(),
        "audit_path": [base64.b64encode(p).decode() for p in path],
    }


def test_trail_entries_verify_against_a_signed_checkpoint_and_tampering_shows():
    events = [
        {"id": f"ev{i}", "type": "mfc.episode.updated", "data": {"n": i}}
        for i in range(5)
    ]
    leaves, checkpoint, key = _log(events)
    trusted = proofs.trusted_checkpoint(
        [checkpoint.to_json()], public_pem(key.public_key())
    )
    assert trusted == checkpoint
    entry = {
        "seq": 3,
        "topic": "mfc.episodes.v1",
        "event": events[2],
        "redacted": False,
    }
    good = proofs.check(entry, _proof(leaves, 3), trusted)
    assert good.verified
    assert good.content_checked

    tampered = {**entry, "event": {**events[2], "data": {"n": 99}}}
    bad = proofs.check(tampered, _proof(leaves, 3), trusted)
    assert not bad.verified
    assert bad.words == "Content does not match the log"

    redacted = {**entry, "event": {"data": "[redacted]"}, "redacted": True}
    only_place = proofs.check(redacted, _proof(leaves, 3), trusted)
    assert only_place.verified
    assert not only_place.content_checked

    wrong_path = _proof(leaves, 3)
    wrong_path["audit_path"] = list(reversed(wrong_path["audit_path"]))
    assert not proofs.check(redacted, wrong_path, trusted).verified

    later = proofs.check({**entry, "seq": 6}, None, trusted)
    assert not later.verified
    assert later.pending, "newer than the checkpoint: not yet, not a failure"
    assert not bad.pending


def test_a_checkpoint_signed_by_another_key_is_not_trusted():
    _, checkpoint, _ = _log([{"id": "x"}])
    other = Ed25519PrivateKey.generate()
    assert (
        proofs.trusted_checkpoint(
            [checkpoint.to_json()], public_pem(other.public_key())
        )
        is None
    )


def test_service_validation_messages_read_as_plain_words():
    assert words.problem_words("String should have at most 128 characters") == (
        "Too long: at most 128 characters."
    )
    assert words.problem_words("Field required") == "This is needed."
    assert words.problem_words("something else") == "something else"
