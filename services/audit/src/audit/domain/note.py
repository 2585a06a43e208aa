"""C2SP signed notes, checkpoints and witness cosignatures. Pure.

The formats a third party can check with standard tools (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature): a checkpoint's text is the
log's origin, the tree size and the base64 root hash, one per line; the log signs it
with an Ed25519 note signature (type 0x01); a witness co-signs it with a timestamped
Ed25519 cosignature (type 0x04) over ``cosignature/v1``, ``time <t>`` and the text.
A signature line is ``— <key name> base64(4-byte key ID || signature)``.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"


class NoteError(ValueError):
    """A note, checkpoint or signature line that is not well formed."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def key_id(name: str, kind: int, public: Ed25519PublicKey) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(
        name.encode() + b"\n" + bytes([kind]) + _raw(public)
    ).digest()[:4]


def vkey(name: str, kind: int, public: Ed25519PublicKey) -> str:
    """The verifier key string ``<name>+<hex key ID>+<base64(type || key)>``."""
    material = base64.b64encode(bytes([kind]) + _raw(public)).decode()
    return f"{name}+{key_id(name, kind, public).hex()}+{material}"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def parse_line(line: str) -> Signature:
    """One signature line (with or without its newline)."""
    parts = line.rstrip("\n").split(" ")
    if len(parts) != 3 or parts[0] != DASH or not parts[1]:
        raise NoteError(f"not a signature line: {line!r}")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"signature is not base64: {line!r}") from exc
    if len(raw) < 5:
        raise NoteError(f"signature too short: {line!r}")
    return Signature(parts[1], raw[:4], raw[4:])


def split(note: str) -> tuple[str, list[Signature]]:
    """A signed note's text (ending in a newline) and its signatures."""
    text, sep, lines = note.rpartition("\n\n")
    if not sep or not lines.endswith("\n"):
        raise NoteError("a note is text, a blank line, then signature lines")
    return text + "\n", [parse_line(line) for line in lines.splitlines()]


@dataclass(frozen=True)
class CheckpointText:
    origin: str
    size: int
    root_hash: bytes

    def text(self) -> str:
        root = base64.b64encode(self.root_hash).decode()
        return f"{self.origin}\n{self.size}\n{root}\n"


def checkpoint_text(text: str) -> CheckpointText:
    """The first three lines of a checkpoint's text."""
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0]:
        raise NoteError("a checkpoint is an origin, a size and a root hash")
    size = lines[1]
    if not (size.isascii() and size.isdigit()) or (
        size != "0" and size.startswith("0")
    ):
        raise NoteError(f"tree size {size!r} is not a decimal")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("root hash is not base64") from exc
    if len(root) != 32:
        raise NoteError("root hash is not 32 bytes")
    return CheckpointText(lines[0], int(size), root)


def sign(text: str, name: str, key: Ed25519PrivateKey) -> Signature:
    """The log's note signature over ``text``."""
    return Signature(
        name, key_id(name, ED25519, key.public_key()), key.sign(text.encode())
    )


def ed25519_valid(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public``'s Ed25519 signature over ``message``."""
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _names(
    signature: Signature, name: str, kind: int, public: Ed25519PublicKey
) -> bool:
    """Whether the line names ``name`` and this key's ID for a ``kind`` signature."""
    return signature.name == name and signature.key_id == key_id(name, kind, public)


def verifies(
    text: str, signature: Signature, name: str, public: Ed25519PublicKey
) -> bool:
    """Whether ``signature`` is ``name``'s note signature over ``text``."""
    return _names(signature, name, ED25519, public) and ed25519_valid(
        public, signature.signature, text.encode()
    )


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> Signature:
    """A witness's timestamped cosignature of a checkpoint's text."""
    signature = key.sign(_cosigned_message(text, timestamp))
    return Signature(
        name,
        key_id(name, COSIGNATURE_V1, key.public_key()),
        timestamp.to_bytes(8, "big") + signature,
    )


def cosigned_at(
    text: str, signature: Signature, name: str, public: Ed25519PublicKey
) -> int | None:
    """When ``name`` co-signed ``text`` (POSIX seconds), or None when the line is
    not a valid cosignature of that witness."""
    if not _names(signature, name, COSIGNATURE_V1, public):
        return None
    if len(signature.signature) != 8 + 64:
        return None
    timestamp = int.from_bytes(signature.signature[:8], "big")
    message = _cosigned_message(text, timestamp)
    if not ed25519_valid(public, signature.signature[8:], message):
        return None
    return timestamp


@dataclass(frozen=True)
class Witness:
    """A witness a verifier trusts: its name and public key."""

    name: str
    public_key: Ed25519PublicKey


def parse_vkey(text: str) -> Witness:
    """A witness from its verifier key (``name+keyid+base64(0x04 || key)``)."""
    try:
        name, hint, material = text.strip().split("+", 2)
        raw = base64.b64decode(material, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError(f"not a verifier key: {text!r}") from exc
    if len(raw) != 33 or raw[0] != COSIGNATURE_V1:
        raise NoteError("not an Ed25519 cosigner verifier key")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, COSIGNATURE_V1, public).hex() != hint:
        raise NoteError("the verifier key's ID does not match its key")
    return Witness(name, public)


def witnessed_by(
    text: str, lines: list[Signature], witnesses: list[Witness]
) -> list[str]:
    """The trusted witnesses whose cosignature of ``text`` is among ``lines``."""
    return [
        w.name
        for w in witnesses
        if any(cosigned_at(text, s, w.name, w.public_key) is not None for s in lines)
    ]
