"""What a witness decides about a submitted checkpoint (c2sp.org/tlog-witness,
``add-checkpoint``). Pure: the witness's record of each log is passed in.

A witness co-signs a checkpoint only when the log's key signed it and it extends,
by a valid consistency proof, the latest checkpoint the witness co-signed for that
log. So a log that rewrites its history cannot get the rewritten tree co-signed, and
a verifier holding the witness's key sees the difference.
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain import merkle, note

MAX_PROOF_LINES = 63


@dataclass(frozen=True)
class Seen:
    """The latest checkpoint a witness co-signed for a log."""

    size: int
    root_hash: bytes


@dataclass(frozen=True)
class Submission:
    old_size: int
    proof: list[bytes]
    checkpoint: note.CheckpointText
    text: str
    signatures: list[note.Signature]


class RefusedError(Exception):
    """The witness will not co-sign; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.size = size
        """With 409: the size of the latest checkpoint the witness co-signed."""


def parse_submission(body: str) -> Submission:
    """``old <size>``, proof lines, a blank line, then the signed checkpoint."""
    head, sep, signed = body.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines[0].startswith("old "):
        raise RefusedError(
            400, "the body is 'old <size>', proof lines, a blank line, a checkpoint"
        )
    old = lines[0][4:]
    if not (old.isascii() and old.isdigit()) or (old != "0" and old.startswith("0")):
        raise RefusedError(400, f"old size {old!r} is not a decimal")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise RefusedError(400, "more than 63 consistency proof lines")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
        text, signatures = note.split(signed)
        checkpoint = note.checkpoint_text(text)
    except (binascii.Error, ValueError) as exc:
        raise RefusedError(400, str(exc)) from exc
    return Submission(int(old), proof, checkpoint, text, signatures)


def check(
    submission: Submission,
    *,
    logs: Mapping[str, list[Ed25519PublicKey]],
    seen: Seen | None,
) -> Seen:
    """The record after co-signing ``submission``; raises RefusedError (404 unknown
    log, 403 no trusted signature, 400 bad sizes, 409 another old size or another
    root at the same size, 422 a consistency proof that does not verify)."""
    checkpoint = submission.checkpoint
    keys = logs.get(checkpoint.origin)
    if keys is None:
        raise RefusedError(404, f"unknown log {checkpoint.origin!r}")
    if not any(
        note.verifies(submission.text, s, checkpoint.origin, key)
        for s in submission.signatures
        for key in keys
    ):
        raise RefusedError(403, "no signature by a key this witness trusts for the log")
    old, new = submission.old_size, checkpoint.size
    if old > new:
        raise RefusedError(400, f"old size {old} is larger than the checkpoint's {new}")
    known = seen.size if seen is not None else 0
    if old != known:
        raise RefusedError(409, f"the latest co-signed size is {known}", size=known)
    if seen is not None and old == new:
        if seen.root_hash != checkpoint.root_hash:
            raise RefusedError(409, "another root hash for a size already co-signed")
        return seen
    if old == 0:  # the empty tree is a prefix of every tree: nothing to prove
        if submission.proof:
            raise RefusedError(422, "a proof from size 0 must be empty")
        return Seen(new, checkpoint.root_hash)
    if seen is not None and not merkle.verify_consistency(
        old_size=old,
        new_size=new,
        old_root=seen.root_hash,
        new_root=checkpoint.root_hash,
        proof=submission.proof,
    ):
        raise RefusedError(
            422, f"the tree of size {new} is not an extension of size {old}"
        )
    return Seen(new, checkpoint.root_hash)
