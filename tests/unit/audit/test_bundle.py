"""Scoped proof bundles (issue 22, part 5), built over an in-memory log exactly as
the service builds them: one county's entries verify offline without the rest of
the log, and any change to the bundle is refused naming the first bad item."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.domain import bundle, merkle
from audit.domain.checkpoint import generate_key, key_id, sign
from audit.domain.entries import entry_leaf_hash

AT = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
KEY = generate_key()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
POLICY_TEXT = 'version = "test"\n'
DIGEST = hashlib.sha256(POLICY_TEXT.encode()).hexdigest()


def event(type_: str, county: str | None, n: int, **data: Any) -> dict[str, Any]:
    body = {"county_code": county, **data} if county else data
    return {
        "id": f"e-{n}",
        "type": type_,
        "source": "test",
        "time": (AT + timedelta(minutes=n)).isoformat(),
        "data": body,
    }


LOG: list[tuple[str, str | None, dict[str, Any]]] = [
    (
        "mfc.policies.v1",
        None,
        event("mfc.policy.adopted", None, 0, content=POLICY_TEXT, digest=DIGEST),
    ),
    ("mfc.episodes.v1", "NC-063", event("mfc.episode.reported", "NC-063", 1)),
    ("mfc.episodes.v1", "KY-111", event("mfc.episode.reported", "KY-111", 2)),
    (
        "mfc.obligations.v1",
        "NC-063",
        event("mfc.obligation.opened", "NC-063", 3, policy_digest=DIGEST),
    ),
    ("mfc.episodes.v1", "KY-111", event("mfc.notification.recorded", "KY-111", 4)),
    ("mfc.episodes.v1", "NC-063", event("mfc.notification.recorded", "NC-063", 5)),
    ("mfc.obligations.v1", "NC-063", event("mfc.obligation.satisfied", "NC-063", 6)),
    ("mfc.episodes.v1", "KY-111", event("mfc.episode.closed", "KY-111", 7)),
    ("mfc.episodes.v1", "NC-063", event("mfc.episode.closed", "NC-063", 8)),
]


class Tree:
    """The log's Merkle tree in memory, with every node a proof needs."""

    def __init__(self, log=LOG) -> None:
        self.leaves = [
            entry_leaf_hash(seq=seq, topic=topic, event=e)
            for seq, (topic, _, e) in enumerate(log, start=1)
        ]
        self.nodes: dict[merkle.Node, bytes] = {}
        compact = merkle.CompactRange()
        for index, leaf in enumerate(self.leaves):
            self.nodes[(0, index)] = leaf
            self.nodes.update(compact.append(leaf))

    def root(self, size: int) -> bytes:
        return merkle.root_of(self.leaves[:size])

    def proof(self, ranges: list[merkle.Range]) -> list[bytes]:
        return [merkle.range_hash(lo, hi, self.nodes) for lo, hi in ranges]

    def checkpoint(self, size: int, key=KEY):
        return sign(key, tree_size=size, root_hash=self.root(size), issued_at=AT)


def build(
    counties: list[str] | None = ("NC-063",),  # type: ignore[assignment]
    *,
    log=LOG,
    extra_seqs: tuple[int, ...] = (),
    key=KEY,
    earlier_sizes: tuple[int, ...] = (4,),
) -> bytes:
    tree = Tree(log)
    size = len(log)
    chosen = [
        seq
        for seq, (_, county, e) in enumerate(log, start=1)
        if counties is None
        or county in counties
        or e["type"] == "mfc.policy.adopted"
        or seq in extra_seqs
    ]
    entries = [
        bundle.BundleEntry(
            seq=seq,
            topic=log[seq - 1][0],
            county_code=log[seq - 1][1],
            redacted=False,
            event=log[seq - 1][2],
            leaf_hash=tree.leaves[seq - 1],
            audit_path=tree.proof(merkle.inclusion_ranges(seq - 1, size)),
        )
        for seq in chosen
    ]
    earlier = [
        bundle.EarlierCheckpoint(
            tree.checkpoint(old, key), tree.proof(merkle.consistency_ranges(old, size))
        )
        for old in earlier_sizes
    ]
    return bundle.make(
        scope={
            "counties": list(counties) if counties else None,
            "from": None,
            "to": None,
        },
        made_at=AT,
        checkpoint=tree.checkpoint(size, key),
        entries=entries,
        earlier=earlier,
        key=key,
    )


def resealed(document: dict[str, Any]) -> bytes:
    """What a forger holding the log's key could make (to reach the later checks)."""
    body = {k: v for k, v in document.items() if k != "seal"}
    return bundle.seal(body, KEY)


def refused(raw: bytes, keys=KEYS) -> str:
    report = bundle.verify_bundle(raw, keys)
    assert not report.ok
    return report.problems[0]


def test_one_countys_bundle_verifies_offline_without_the_rest_of_the_log():
    report = bundle.verify_bundle(build(), KEYS)
    assert report.ok, report.problems
    assert report.entries == 6  # NC-063's five and the policy file
    assert report.checked_by_content == 6
    assert report.policies == 1
    assert report.tree_size == len(LOG)
    document = json.loads(build())
    assert {e["county_code"] for e in document["entries"]} == {"NC-063", None}
    assert document == json.loads(rfc8785.dumps(document)), "canonical JSON"


def test_changed_content_is_named_by_its_entry():
    document = json.loads(build())
    document["entries"][2]["event"]["data"]["county_code"] = "NC-064"
    named = "entry seq 4: its content does not match its hash"
    assert named in refused(resealed(document))
    assert named in refused(rfc8785.dumps(document)), "before the seal is checked"


def test_reordered_entries_are_named():
    document = json.loads(build())
    entries = document["entries"]
    entries[1], entries[2] = entries[2], entries[1]
    assert "entry 3 (seq 2) is out of order: it follows seq 4" in refused(
        resealed(document)
    )


def test_a_dropped_entry_breaks_the_seal():
    document = json.loads(build())
    del document["entries"][3]
    assert "the bundle's seal does not verify" in refused(rfc8785.dumps(document))


def test_a_bundle_from_another_log_or_key_is_refused():
    other = generate_key()
    assert "signed by an unknown key" in refused(build(key=other))
    document = json.loads(build())
    document["log"] = "someone-else/v1"
    assert "from another log" in refused(rfc8785.dumps(document))
    assert "truncated or not JSON" in refused(build()[:-40])


def test_an_entry_outside_the_scope_is_named():
    raw = build(extra_seqs=(3,))  # a KY-111 entry in an NC-063 bundle
    assert "entry seq 3 is of county KY-111, outside the bundle's scope" in refused(raw)


def test_a_policy_the_bundle_lacks_is_named():
    log = [item for item in LOG if item[2]["type"] != "mfc.policy.adopted"]
    assert f"was decided by policy {DIGEST}" in refused(
        build(log=log, earlier_sizes=(3,))
    )


def test_rewritten_history_fails_the_consistency_proof():
    """An earlier checkpoint of a different history (entry 2 changed) cannot be
    proven a prefix of the newest tree."""
    document = json.loads(build())
    rewritten = list(LOG)
    rewritten[1] = (LOG[1][0], LOG[1][1], {**LOG[1][2], "id": "forged"})
    forged = Tree(rewritten).checkpoint(4)
    document["earlier_checkpoints"][0]["checkpoint"] = forged.to_json()
    assert "earlier checkpoint 1 (tree size 4) is not consistent" in refused(
        resealed(document)
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_byte_is_refused_and_verify_never_crashes(data):
    raw = build()
    position = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    tampered = raw[:position] + bytes([value]) + raw[position + 1 :]
    report = bundle.verify_bundle(tampered, KEYS)
    assert not report.ok
    assert report.problems


@settings(max_examples=200)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_garbage_is_refused_not_crashed_on(raw):
    assert not bundle.verify_bundle(raw, KEYS).ok


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.update(entries="none"),
        lambda d: d["entries"][0].update(audit_path=["%%%"]),
        lambda d: d["entries"][0].update(seq="one"),
        lambda d: d.update(checkpoint=[]),
        lambda d: d.update(earlier_checkpoints=[{"checkpoint": 1}]),
        lambda d: d.update(scope=None),
        lambda d: d["entries"][0].update(event=None),
    ],
)
def test_malformed_parts_are_refused_with_a_message(mangle):
    document = json.loads(build())
    mangle(document)
    assert refused(resealed(document))


def test_a_seal_by_an_unknown_key_is_named():
    document = json.loads(build())
    document["seal"]["key_id"] = "0123456789abcdef"
    assert "sealed by an unknown key" in refused(rfc8785.dumps(document))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"format":"mfc-audit-bundle/1","log":"missing-from-care/audit/v1","checkpoint":{"log":"missing-from-care/audit/v1","tree_size":1e999}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_numbers_and_nesting_past_the_limits_are_refused(raw):
    assert not bundle.verify_bundle(raw, KEYS).ok


def test_an_entry_whose_seq_is_not_a_whole_number_is_named():
    document = json.loads(build())
    document["entries"][0]["seq"] = "1"
    assert "entry 1 is malformed" in refused(resealed(document))
