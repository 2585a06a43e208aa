"""Signed tree heads (checkpoints): tree size, root hash, time, Ed25519 signature.

The signed message is the RFC 8785 canonical JSON of ``{"log", "tree_size",
"root_hash", "issued_at"}``, so any JSON tool can rebuild it. ``key_id`` (the first
16 hex digits of SHA-256 over the raw public key) says which key signed, so old
checkpoints still verify after a key rotation when the old public key is kept.
"""

import base64
import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit.domain import note

LOG_NAME = "missing-from-care/audit/v1"
"""The log's name in every checkpoint, and its C2SP origin line."""


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: bytes
    issued_at: datetime
    key_id: str
    signature: bytes
    note_line: str | None = None
    """The log key's C2SP note signature line over ``note_text`` (None on
    checkpoints from before notes)."""
    cosignatures: tuple[str, ...] = ()
    """Witnesses' cosignature lines of ``note_text``, as they answered."""

    def signed_message(self) -> bytes:
        return signed_message(self.tree_size, self.root_hash, self.issued_at)

    def note_text(self) -> str:
        """The C2SP checkpoint text: origin, size, base64 root, one per line."""
        return note.CheckpointText(LOG_NAME, self.tree_size, self.root_hash).text()

    def note(self) -> str | None:
        """The signed note: the text, a blank line, the log's and the witnesses'
        signature lines (what ``add-checkpoint`` takes and a third party checks)."""
        if self.note_line is None:
            return None
        return self.note_text() + "\n" + self.note_line + "".join(self.cosignatures)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "log": LOG_NAME,
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "issued_at": _timestamp(self.issued_at),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        signed_note = self.note()
        if signed_note is not None:
            document["note"] = signed_note
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Checkpoint":
        """Raises ValueError (naming the field) on a malformed document."""
        try:
            note_line, cosignatures = _note_lines(document.get("note"))
            return cls(
                tree_size=int(document["tree_size"]),
                root_hash=base64.b64decode(document["root_hash"], validate=True),
                issued_at=datetime.fromisoformat(document["issued_at"]),
                key_id=str(document["key_id"]),
                signature=base64.b64decode(document["signature"], validate=True),
                note_line=note_line,
                cosignatures=cosignatures,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"malformed checkpoint: {exc!r}") from exc

    def with_cosignatures(self, lines: tuple[str, ...]) -> "Checkpoint":
        return replace(self, cosignatures=lines)


def _note_lines(signed_note: object) -> tuple[str | None, tuple[str, ...]]:
    """The log's signature line and the others of a checkpoint's note."""
    if signed_note is None:
        return None, ()
    if not isinstance(signed_note, str):
        raise ValueError("note is not text")
    _, signatures = note.split(signed_note)
    lines = [s.line() for s in signatures]
    if not signatures or signatures[0].name != LOG_NAME:
        raise ValueError("the note's first signature is not the log's")
    return lines[0], tuple(lines[1:])


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def signed_message(tree_size: int, root_hash: bytes, issued_at: datetime) -> bytes:
    return rfc8785.dumps(
        {
            "log": LOG_NAME,
            "tree_size": tree_size,
            "root_hash": base64.b64encode(root_hash).decode(),
            "issued_at": _timestamp(issued_at),
        }
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(
    key: Ed25519PrivateKey, *, tree_size: int, root_hash: bytes, issued_at: datetime
) -> Checkpoint:
    # Microseconds survive the round trip through PostgreSQL and ISO 8601 text.
    issued_at = issued_at.astimezone(UTC)
    text = note.CheckpointText(LOG_NAME, tree_size, root_hash).text()
    return Checkpoint(
        tree_size=tree_size,
        root_hash=root_hash,
        issued_at=issued_at,
        key_id=key_id(key.public_key()),
        signature=key.sign(signed_message(tree_size, root_hash, issued_at)),
        note_line=note.sign(text, LOG_NAME, key).line(),
    )


def signature_valid(
    checkpoint: Checkpoint, public_keys: dict[str, Ed25519PublicKey]
) -> bool:
    key = public_keys.get(checkpoint.key_id)
    return key is not None and note.ed25519_valid(
        key, checkpoint.signature, checkpoint.signed_message()
    )


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Raises ValueError naming the file when it holds no Ed25519 private key."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id, from PEM files (public or private keys)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            public = load_private_key(path).public_key()
        else:
            loaded = serialization.load_pem_public_key(data)
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError(f"{path}: not an Ed25519 public key")
            public = loaded
        keys[key_id(public)] = public
    return keys
