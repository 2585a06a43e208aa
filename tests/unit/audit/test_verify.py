"""Checkpoint signatures and whole-log verification: each kind of tampering is
caught and named at the first entry and checkpoint it touches."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from audit.domain import checkpoint as signing
from audit.domain.entries import entry_leaf_hash
from audit.domain.merkle import root_of
from audit.domain.verify import LogVerifier, StoredEntry, compare_copies

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KEY = signing.generate_key()
TRUSTED = {signing.key_id(KEY.public_key()): KEY.public_key()}


def make_log(size: int) -> list[StoredEntry]:
    entries = []
    for seq in range(1, size + 1):
        event = {"id": f"e{seq}", "type": "mfc.test", "data": {"n": seq, "x": 1.5}}
        leaf = entry_leaf_hash(seq=seq, topic="mfc.test.v1", event=event)
        entries.append(StoredEntry(seq, "mfc.test.v1", leaf, event))
    return entries


def checkpoint_at(entries: list[StoredEntry], size: int, key=KEY) -> signing.Checkpoint:
    root = root_of(e.leaf_hash for e in entries[:size])
    return signing.sign(
        key, tree_size=size, root_hash=root, issued_at=T0 + timedelta(minutes=size)
    )


def verify(entries, checkpoints):
    verifier = LogVerifier(
        checkpoints=[(c, "test") for c in checkpoints], public_keys=TRUSTED
    )
    for entry in entries:
        verifier.add(entry)
    return verifier.finish()


def test_an_untouched_log_verifies():
    log = make_log(20)
    report = verify(log, [checkpoint_at(log, 5), checkpoint_at(log, 20)])
    assert report.ok, report.problems
    assert (report.tree_size, report.contents_checked) == (20, 20)
    assert report.checkpoints_checked == 2


def test_a_checkpoint_survives_its_json_round_trip():
    signed = checkpoint_at(make_log(3), 3)
    again = signing.Checkpoint.from_json(signed.to_json())
    assert again == signed
    assert signing.signature_valid(again, TRUSTED)


def test_edited_content_is_named_at_exactly_that_entry():
    log = make_log(20)
    checkpoints = [checkpoint_at(log, 10), checkpoint_at(log, 20)]
    event = {**log[6].event, "data": {"n": 999}}
    log[6] = log[6]._replace(event=event)
    report = verify(log, checkpoints)
    assert not report.ok
    assert report.first_bad_entry == 7
    assert report.first_bad_checkpoint["tree_size"] == 10


def test_content_rewritten_with_its_hash_is_caught_by_the_signed_root():
    log = make_log(20)
    checkpoints = [
        checkpoint_at(log, 4),
        checkpoint_at(log, 12),
        checkpoint_at(log, 20),
    ]
    event = {**log[8].event, "data": {"n": 0}}
    log[8] = log[8]._replace(
        event=event,
        leaf_hash=entry_leaf_hash(seq=9, topic="mfc.test.v1", event=event),
    )
    report = verify(log, checkpoints)
    assert not report.ok
    assert report.first_bad_entry is None  # the row itself is consistent
    assert report.first_bad_checkpoint["tree_size"] == 12  # the first root after it


def test_removed_entries_are_caught():
    log = make_log(10)
    checkpoints = [checkpoint_at(log, 10)]
    report = verify(log[:3] + log[4:8], checkpoints)
    assert report.first_bad_entry == 4
    truncated = verify(log[:8], checkpoints)
    assert not truncated.ok
    assert "only 8" in " ".join(truncated.problems)


def test_a_checkpoint_signed_by_an_unknown_key_fails():
    log = make_log(5)
    report = verify(log, [checkpoint_at(log, 5, key=signing.generate_key())])
    assert not report.ok
    assert "signature" in report.problems[0]


def test_a_forged_signature_fails():
    log = make_log(5)
    signed = checkpoint_at(log, 5)
    forged = replace(signed, root_hash=bytes(32))
    assert not signing.signature_valid(forged, TRUSTED)


def test_copies_missing_from_the_database_are_reported():
    log = make_log(6)
    kept, lost = checkpoint_at(log, 3), checkpoint_at(log, 6)
    assert compare_copies([kept], [kept]) == []
    [problem] = compare_copies([kept], [kept, lost])
    assert "tree size 6" in problem


def verify_rows(entries, checkpoints):
    """As verify reads the database: rows in chunks, each event as its JSON text."""
    verifier = LogVerifier(
        checkpoints=[(c, "test") for c in checkpoints], public_keys=TRUSTED
    )
    rows = [
        (e.seq, e.topic, e.leaf_hash, None if e.event is None else json.dumps(e.event))
        for e in entries
    ]
    for start in range(0, len(rows), 7):
        verifier.add_all(rows[start : start + 7], events_as_text=True)
    return verifier.finish()


def tampered_logs():
    log = make_log(20)
    yield "untouched", log
    edited = list(log)
    edited[6] = edited[6]._replace(event={**edited[6].event, "data": {"n": 999}})
    yield "edited", edited
    rewritten = list(log)
    event = {**log[8].event, "data": {"n": 0}}
    rewritten[8] = rewritten[8]._replace(
        event=event, leaf_hash=entry_leaf_hash(seq=9, topic="mfc.test.v1", event=event)
    )
    yield "rewritten with its hash", rewritten
    yield "removed", log[:3] + log[4:]
    yield "truncated", log[:15]
    yield "redacted", [*log[:5], log[5]._replace(event=None), *log[6:]]
    yield "hash only edited", [*log[:2], log[2]._replace(leaf_hash=bytes(32)), *log[3:]]


def test_rows_with_the_event_as_text_are_judged_as_entries_are():
    """``add_all`` over database rows (the event as its JSON text) reports exactly
    what ``add`` over entries does, for each kind of tampering."""
    log = make_log(20)
    checkpoints = [
        checkpoint_at(log, 4),
        checkpoint_at(log, 12),
        checkpoint_at(log, 20),
    ]
    for name, entries in tampered_logs():
        by_entry = verify(entries, checkpoints).to_json()
        by_rows = verify_rows(entries, checkpoints).to_json()
        assert by_rows == by_entry, name
        assert by_entry["ok"] is (name in {"untouched", "redacted"}), name


def test_an_event_overwritten_with_json_null_is_caught():
    """A stored event set to JSON ``null`` (not SQL NULL, which is a redaction)
    is content like any other: it no longer matches its leaf hash."""
    log = make_log(5)
    rows = [
        (e.seq, e.topic, e.leaf_hash, "null" if e.seq == 3 else json.dumps(e.event))
        for e in log
    ]
    verifier = LogVerifier(
        checkpoints=[(checkpoint_at(log, 5), "test")], public_keys=TRUSTED
    )
    verifier.add_all(rows, events_as_text=True)
    report = verifier.finish()
    assert not report.ok
    assert report.first_bad_entry == 3


def test_an_event_replaced_by_its_own_json_text_is_caught():
    """Only rows read as text are parsed: an entry whose event is a string (an
    export's event rewritten as the text of itself) is hashed as that string."""
    log = make_log(5)
    log[2] = log[2]._replace(event=json.dumps(log[2].event))
    report = verify(log, [checkpoint_at(make_log(5), 5)])
    assert not report.ok
    assert report.first_bad_entry == 3
