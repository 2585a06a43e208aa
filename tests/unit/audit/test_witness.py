"""The witness (issue 22, part 6): C2SP note signatures a third party can check,
and a witness that co-signs only checkpoints extending the last one it co-signed."""

import base64
import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from audit.domain import merkle, note, witnessing
from audit.domain.checkpoint import generate_key, private_pem, public_pem
from audit.witness import WitnessSettings, create_app

ORIGIN = "missing-from-care/audit/v1"
LOG_KEY = generate_key()
LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(20)]


def root(size: int, leaves=LEAVES) -> bytes:
    return merkle.root_of(leaves[:size])


def signed_checkpoint(size: int, leaves=LEAVES, key=LOG_KEY) -> str:
    text = note.CheckpointText(ORIGIN, size, root(size, leaves)).text()
    return text + "\n" + note.sign(text, ORIGIN, key).line()


def proof(old: int, new: int, leaves=LEAVES) -> list[bytes]:
    nodes: dict[merkle.Node, bytes] = {}
    compact = merkle.CompactRange()
    for index, leaf in enumerate(leaves[:new]):
        nodes[(0, index)] = leaf
        nodes.update(compact.append(leaf))
    return [
        merkle.range_hash(lo, hi, nodes)
        for lo, hi in merkle.consistency_ranges(old, new)
    ]


def body(old: int, new: int, leaves=LEAVES, key=LOG_KEY) -> str:
    lines = [f"old {old}"] + [
        base64.b64encode(h).decode() for h in (proof(old, new, leaves) if old else [])
    ]
    return "\n".join(lines) + "\n\n" + signed_checkpoint(new, leaves, key)


def test_a_note_signature_matches_the_c2sp_key_id_and_verifies():
    text = note.CheckpointText(ORIGIN, 5, root(5)).text()
    signature = note.sign(text, ORIGIN, LOG_KEY)
    raw = LOG_KEY.public_key().public_bytes_raw()
    assert (
        signature.key_id
        == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    )
    assert note.verifies(text, signature, ORIGIN, LOG_KEY.public_key())
    assert not note.verifies(
        text.replace("5", "6", 1), signature, ORIGIN, LOG_KEY.public_key()
    )
    parsed_text, [parsed] = note.split(text + "\n" + signature.line())
    assert (parsed_text, parsed) == (text, signature)


def test_a_cosignature_carries_its_time_and_binds_the_witness_key():
    witness = generate_key()
    text = note.CheckpointText(ORIGIN, 5, root(5)).text()
    line = note.cosign(text, "w.example/1", witness, 1_700_000_000)
    assert (
        note.cosigned_at(text, line, "w.example/1", witness.public_key())
        == 1_700_000_000
    )
    assert note.cosigned_at(text, line, "w.example/1", LOG_KEY.public_key()) is None
    assert (
        note.cosigned_at(text + "x\n", line, "w.example/1", witness.public_key())
        is None
    )
    key = note.parse_vkey(
        note.vkey("w.example/1", note.COSIGNATURE_V1, witness.public_key())
    )
    assert note.witnessed_by(text, [line], [key]) == ["w.example/1"]


def check(raw: str, seen=None):
    submission = witnessing.parse_submission(raw)
    return witnessing.check(
        submission, logs={ORIGIN: [LOG_KEY.public_key()]}, seen=seen
    )


def test_the_witness_follows_a_growing_log():
    first = check(body(0, 4))
    assert first == witnessing.Seen(4, root(4))
    assert check(body(4, 9), first) == witnessing.Seen(9, root(9))
    assert check(body(4, 4), first) == first  # the same tree again
    empty = check(body(0, 0))  # a log that starts empty
    assert check(body(0, 3), empty) == witnessing.Seen(3, root(3))


@pytest.mark.parametrize(
    ("raw", "seen", "status"),
    [
        (body(0, 4).replace(ORIGIN, "another/log"), None, 404),
        (body(0, 4, key=generate_key()), None, 403),
        (body(4, 9), None, 409),  # it never saw size 4
        (body(0, 9), witnessing.Seen(4, root(4)), 409),
        ("old 9\n\n" + signed_checkpoint(4), witnessing.Seen(4, root(4)), 400),
        ("nothing at all", None, 400),
    ],
)
def test_the_witness_refuses_saying_why(raw, seen, status):
    with pytest.raises(witnessing.RefusedError) as refused:
        check(raw, seen)
    assert refused.value.status == status


def test_a_rewritten_history_is_not_co_signed():
    """Entry 2 changed and the tree recomputed consistently: the new tree does not
    extend the one the witness co-signed."""
    seen = check(body(0, 6))
    rewritten = list(LEAVES)
    rewritten[2] = merkle.leaf_hash(b"a different entry 2")
    with pytest.raises(witnessing.RefusedError) as refused:
        check(body(6, 10, rewritten), seen)
    assert refused.value.status == 422
    same_size = body(6, 6, rewritten)
    with pytest.raises(witnessing.RefusedError) as refused:
        check(same_size, seen)
    assert refused.value.status == 409


@pytest.fixture
def witness(tmp_path: Path):
    key, log_pub = tmp_path / "witness.pem", tmp_path / "log.pub"
    key.write_bytes(private_pem(generate_key()))
    log_pub.write_bytes(public_pem(LOG_KEY.public_key()))
    settings = WitnessSettings(
        key_file=key, state_file=tmp_path / "state.json", logs={ORIGIN: [log_pub]}
    )
    return settings


def test_the_witness_over_http_persists_what_it_co_signed(witness):
    with TestClient(create_app(witness, clock=lambda: 1_700_000_000.0)) as client:
        vkey = note.parse_vkey(client.get("/vkey").text)
        answer = client.post("/add-checkpoint", content=body(0, 5))
        assert answer.status_code == 200, answer.text
        text = note.CheckpointText(ORIGIN, 5, root(5)).text()
        [line] = [note.parse_line(x) for x in answer.text.splitlines()]
        assert note.witnessed_by(text, [line], [vkey]) == [witness.name]
        stale = client.post("/add-checkpoint", content=body(0, 7))
        assert (stale.status_code, stale.text) == (409, "5\n")
        assert stale.headers["content-type"].startswith("text/x.tlog.size")
    # A restarted witness remembers: it still refuses to forget size 5.
    with TestClient(create_app(witness)) as client:
        assert client.get(f"/checkpoints/{ORIGIN}").json()["size"] == 5
        assert client.post("/add-checkpoint", content=body(0, 7)).status_code == 409
        assert client.post("/add-checkpoint", content=body(5, 7)).status_code == 200


def test_verify_checks_the_witnesses_cosignatures_and_their_view():
    """Offline and online verify take witness keys: a checkpoint co-signed by a
    trusted witness is witnessed; a cosignature that does not verify, no witnessed
    checkpoint at all, or a witness that saw another tree all fail."""
    from audit.domain.checkpoint import LOG_NAME, sign
    from audit.domain.entries import entry_leaf_hash
    from audit.domain.verify import LogVerifier, StoredEntry

    witness_key = generate_key()
    trusted = note.Witness("w.example/1", witness_key.public_key())
    entries = [
        StoredEntry(
            seq,
            "mfc.episodes.v1",
            entry_leaf_hash(seq=seq, topic="mfc.episodes.v1", event={"n": seq}),
            {"n": seq},
        )
        for seq in range(1, 8)
    ]
    leaves = [e.leaf_hash for e in entries]
    from datetime import UTC, datetime

    checkpoint = sign(
        LOG_KEY,
        tree_size=7,
        root_hash=merkle.root_of(leaves),
        issued_at=datetime.now(UTC),
    )
    cosigned = checkpoint.with_cosignatures(
        (note.cosign(checkpoint.note_text(), trusted.name, witness_key, 1).line(),)
    )
    keys = {checkpoint.key_id: LOG_KEY.public_key()}

    def verify(checkpoints, witnesses=(trusted,), expect=None):
        verifier = LogVerifier(
            checkpoints=[(c, "test") for c in checkpoints],
            public_keys=keys,
            witnesses=witnesses,
        )
        if expect is not None:
            verifier.expect(*expect, "the witness")
        for entry in entries:
            verifier.add(entry)
        return verifier.finish()

    assert verify([cosigned]).ok
    assert verify([cosigned]).witnessed_size == 7
    assert LOG_NAME in cosigned.to_json()["note"]
    assert type(cosigned).from_json(cosigned.to_json()) == cosigned
    unwitnessed = verify([checkpoint])
    assert not unwitnessed.ok
    assert "no checkpoint is co-signed" in unwitnessed.problems[0]
    forged = checkpoint.with_cosignatures(
        (note.cosign(checkpoint.note_text(), trusted.name, generate_key(), 1).line(),)
    )
    # Another key under the witness's name is not the witness: ignored.
    assert "no checkpoint is co-signed" in verify([forged]).problems[0]
    genuine = note.cosign(checkpoint.note_text(), trusted.name, witness_key, 1)
    broken = note.Signature(
        # One bit flipped (a byte set to zero left 1 signature in 256 as it was).
        genuine.name,
        genuine.key_id,
        genuine.signature[:-1] + bytes([genuine.signature[-1] ^ 1]),
    )
    tampered = checkpoint.with_cosignatures((broken.line(),))
    assert "cosignature does not verify" in verify([tampered]).problems[0]
    # A rotated witness: its old key stays trusted beside the new one.
    rotated = note.Witness(trusted.name, generate_key().public_key())
    assert verify([cosigned], witnesses=(rotated, trusted)).ok
    other_root = verify([cosigned], expect=(4, b"\x00" * 32))
    assert "history was rewritten" in other_root.problems[0]
    assert verify([cosigned], expect=(4, merkle.root_of(leaves[:4]))).ok
    assert (
        "entries were removed"
        in verify([cosigned], expect=(9, b"\x00" * 32)).problems[0]
    )
    assert verify([checkpoint], witnesses=()).ok  # no witness keys: not required


def test_mfc_audit_witness_key_prints_the_verifier_key(tmp_path: Path, capsys):
    from devtools.cli import main

    key = generate_key()
    path = tmp_path / "witness.pem"
    path.write_bytes(private_pem(key))
    assert main(["audit", "witness-key", str(path), "--name", "w.example/2"]) == 0
    printed = capsys.readouterr().out.strip()
    assert note.parse_vkey(printed).name == "w.example/2"
    assert printed == note.vkey("w.example/2", note.COSIGNATURE_V1, key.public_key())
