"""Checking an episode's audit trail in the console: every entry's inclusion proof
against the newest checkpoint whose signature verifies with the audit key. Pure; the
hashing and signature code is the audit package's, the same the offline verifier
(``mfc audit verify``) runs.

Where the entry's content is shown unredacted, its leaf hash is recomputed from it, so
the page proves that what it shows is what the log holds. Where personal fields are
redacted (role ``auditor``), the leaf hash is the log's own and only its place in the
signed tree is proven.
"""

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from audit.domain.checkpoint import Checkpoint, key_id, signature_valid
from audit.domain.entries import entry_leaf_hash
from audit.domain.merkle import verify_inclusion


@dataclass(frozen=True)
class ProofCheck:
    seq: int
    verified: bool
    content_checked: bool
    """The leaf hash was recomputed from the entry shown."""
    words: str
    pending: bool = False
    """Newer than the newest signed checkpoint: not checkable yet, not a failure."""


def trusted_checkpoint(
    checkpoints: Sequence[Mapping[str, Any]], public_key_pem: bytes
) -> Checkpoint | None:
    """The newest checkpoint whose signature verifies with the audit key."""
    key = load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        return None
    keys = {key_id(key): key}
    for document in checkpoints:  # newest first
        try:
            checkpoint = Checkpoint.from_json(dict(document))
        except ValueError:
            continue
        if signature_valid(checkpoint, keys):
            return checkpoint
    return None


def check(
    entry: Mapping[str, Any],
    proof: Mapping[str, Any] | None,
    checkpoint: Checkpoint | None,
) -> ProofCheck:
    seq = int(entry["seq"])
    if checkpoint is None:
        return ProofCheck(seq, False, False, "No signed checkpoint to check against")
    if seq > checkpoint.tree_size or proof is None:
        return ProofCheck(
            seq, False, False, "Not yet in a signed checkpoint", pending=True
        )
    leaf = base64.b64decode(str(proof["leaf_hash"]))
    content_checked = False
    if not entry.get("redacted") and isinstance(entry.get("event"), dict):
        recomputed = entry_leaf_hash(
            seq=seq, topic=str(entry["topic"]), event=dict(entry["event"])
        )
        if recomputed != leaf:
            return ProofCheck(seq, False, True, "Content does not match the log")
        content_checked = True
    ok = verify_inclusion(
        leaf=leaf,
        index=seq - 1,
        size=checkpoint.tree_size,
        path=[base64.b64decode(h) for h in proof["audit_path"]],
        root=checkpoint.root_hash,
    )
    if not ok:
        return ProofCheck(seq, False, content_checked, "Proof does not verify")
    return ProofCheck(
        seq,
        True,
        content_checked,
        f"Verified in signed checkpoint of {checkpoint.tree_size} entries",
    )
