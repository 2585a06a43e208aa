"""Scoped proof bundles: an auditor's counties and period, verifiable offline
without the rest of the log. Pure.

A bundle is one canonical JSON document (RFC 8785, so every byte is covered):
its scope; the newest signed checkpoint; each selected entry with its audit path to
that checkpoint's root; the earlier checkpoints signed over the period, each with a
consistency proof to the newest (the log only grew); and a seal, the log key's
Ed25519 signature over the rest. The policy files (``mfc.policy.adopted``) are
entries like any other, so the bundle carries them with their proofs.

``verify_bundle`` checks everything and names the first bad item; it never raises
on malformed input.
"""

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit.domain import merkle, note
from audit.domain.checkpoint import LOG_NAME, Checkpoint, key_id, signature_valid
from audit.domain.entries import entry_leaf_hash

FORMAT = "mfc-audit-bundle/1"
POLICY_ADOPTED = "mfc.policy.adopted"
POLICIES = "mfc.policies.v1"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"not base64 text: {text!r}")
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class BundleEntry:
    """An entry as the bundle carries it (its event redacted or whole)."""

    seq: int
    topic: str
    county_code: str | None
    redacted: bool
    event: dict[str, Any]
    leaf_hash: bytes
    audit_path: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "topic": self.topic,
            "county_code": self.county_code,
            "redacted": self.redacted,
            "event": self.event,
            "leaf_hash": _b64(self.leaf_hash),
            "audit_path": [_b64(h) for h in self.audit_path],
        }


@dataclass(frozen=True)
class EarlierCheckpoint:
    checkpoint: Checkpoint
    consistency: list[bytes]


def seal(document: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The bundle's bytes: ``document`` with the log key's seal over it."""
    body = dict(document)
    signature = key.sign(rfc8785.dumps(body))
    body["seal"] = {"key_id": key_id(key.public_key()), "signature": _b64(signature)}
    return rfc8785.dumps(body)


def make(
    *,
    scope: Mapping[str, Any],
    made_at: datetime,
    checkpoint: Checkpoint,
    entries: Iterable[BundleEntry],
    earlier: Iterable[EarlierCheckpoint],
    key: Ed25519PrivateKey,
) -> bytes:
    return seal(
        {
            "format": FORMAT,
            "log": LOG_NAME,
            "scope": dict(scope),
            "made_at": made_at.isoformat(),
            "checkpoint": checkpoint.to_json(),
            "earlier_checkpoints": [
                {
                    "checkpoint": e.checkpoint.to_json(),
                    "consistency": [_b64(h) for h in e.consistency],
                }
                for e in earlier
            ],
            "entries": [e.to_json() for e in entries],
        },
        key,
    )


@dataclass
class BundleReport:
    """What verifying a bundle found: ``problems`` in order, the first bad item
    first."""

    entries: int = 0
    checked_by_content: int = 0
    policies: int = 0
    tree_size: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checked_by_content": self.checked_by_content,
            "policies": self.policies,
            "tree_size": self.tree_size,
            "problems": self.problems,
        }


class _RefusedError(Exception):
    """The first problem that stops verification."""


def verify_bundle(
    raw: bytes,
    public_keys: Mapping[str, Ed25519PublicKey],
    witnesses: Sequence[note.Witness] = (),
) -> BundleReport:
    """Check a bundle offline against the log's public keys (and, when given, that
    a trusted witness co-signed its checkpoint)."""
    report = BundleReport()
    try:
        document = _document(raw)
        checkpoint = _checkpoint(document["checkpoint"], public_keys, "the checkpoint")
        report.tree_size = checkpoint.tree_size
        _witnessed(checkpoint, witnesses)
        entries = _entries(document, checkpoint, report)
        _earlier(document, checkpoint, public_keys)
        _scope(document, entries)
        _policies(entries, report)
        _seal(document, public_keys)
    except _RefusedError as exc:
        report.problems.append(str(exc))
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as exc:
        report.problems.append(f"malformed bundle: {type(exc).__name__}: {exc}"[:300])
    return report


def _document(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _RefusedError(f"not a bundle (truncated or not JSON): {exc}") from exc
    if not isinstance(document, dict):
        raise _RefusedError("not a bundle: the document is not a JSON object")
    if document.get("format") != FORMAT:
        raise _RefusedError(
            f"not a bundle of this kind (format {document.get('format')!r})"
        )
    if document.get("log") != LOG_NAME:
        raise _RefusedError(f"a bundle from another log ({document.get('log')!r})")
    return document


def _checkpoint(
    found: Any, public_keys: Mapping[str, Ed25519PublicKey], name: str
) -> Checkpoint:
    if not isinstance(found, dict):
        raise _RefusedError(f"{name} is missing")
    if found.get("log") != LOG_NAME:
        raise _RefusedError(f"{name} is from another log ({found.get('log')!r})")
    try:
        checkpoint = Checkpoint.from_json(found)
    except ValueError as exc:
        raise _RefusedError(f"{name}: {exc}") from exc
    if checkpoint.key_id not in public_keys:
        raise _RefusedError(f"{name} is signed by an unknown key ({checkpoint.key_id})")
    if not signature_valid(checkpoint, dict(public_keys)):
        raise _RefusedError(f"{name} (tree size {checkpoint.tree_size}): bad signature")
    return checkpoint


def _witnessed(checkpoint: Checkpoint, witnesses: Sequence[note.Witness]) -> None:
    if not witnesses:
        return
    lines = []
    for line in checkpoint.cosignatures:
        try:
            lines.append(note.parse_line(line))
        except note.NoteError as exc:
            raise _RefusedError(
                f"the checkpoint's cosignature is malformed: {exc}"
            ) from exc
    if not note.witnessed_by(checkpoint.note_text(), lines, list(witnesses)):
        raise _RefusedError(
            f"the checkpoint (tree size {checkpoint.tree_size}) is not co-signed by a "
            "trusted witness"
        )


def _entries(
    document: dict[str, Any], checkpoint: Checkpoint, report: BundleReport
) -> list[BundleEntry]:
    found = document.get("entries")
    if not isinstance(found, list):
        raise _RefusedError("the bundle has no entries list")
    entries, previous = [], 0
    for position, item in enumerate(found, start=1):
        entry = _entry(item, position)
        if entry.seq <= previous:
            raise _RefusedError(
                f"entry {position} (seq {entry.seq}) is out of order: it follows "
                f"seq {previous}"
            )
        _include(entry, checkpoint, report)
        entries.append(entry)
        previous = entry.seq
    report.entries = len(entries)
    return entries


def _entry(item: Any, position: int) -> BundleEntry:
    try:
        if type(item["seq"]) is not int:
            raise TypeError(f"seq {item['seq']!r} is not a whole number")
        return BundleEntry(
            seq=item["seq"],
            topic=str(item["topic"]),
            county_code=item["county_code"],
            redacted=bool(item["redacted"]),
            event=dict(item["event"]),
            leaf_hash=_unb64(item["leaf_hash"]),
            audit_path=[_unb64(h) for h in item["audit_path"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _RefusedError(f"entry {position} is malformed: {exc!r}") from exc


def _include(entry: BundleEntry, checkpoint: Checkpoint, report: BundleReport) -> None:
    """The entry's content gives its leaf hash (unless redacted), and its audit path
    leads from that leaf to the checkpoint's root."""
    if not entry.redacted:
        actual = entry_leaf_hash(seq=entry.seq, topic=entry.topic, event=entry.event)
        if actual != entry.leaf_hash:
            raise _RefusedError(
                f"entry seq {entry.seq}: its content does not match its hash"
            )
        report.checked_by_content += 1
    if not merkle.verify_inclusion(
        leaf=entry.leaf_hash,
        index=entry.seq - 1,
        size=checkpoint.tree_size,
        path=entry.audit_path,
        root=checkpoint.root_hash,
    ):
        raise _RefusedError(
            f"entry seq {entry.seq}: its inclusion proof does not reach the "
            f"checkpoint's root (tree size {checkpoint.tree_size})"
        )


def _earlier(
    document: dict[str, Any],
    newest: Checkpoint,
    public_keys: Mapping[str, Ed25519PublicKey],
) -> None:
    """Each earlier checkpoint is signed and the newest tree extends it."""
    found = document.get("earlier_checkpoints")
    if not isinstance(found, list):
        raise _RefusedError("the bundle has no earlier_checkpoints list")
    for position, item in enumerate(found, start=1):
        if not isinstance(item, dict):
            raise _RefusedError(f"earlier checkpoint {position} is malformed")
        name = f"earlier checkpoint {position}"
        older = _checkpoint(item.get("checkpoint"), public_keys, name)
        proof = item.get("consistency")
        if not isinstance(proof, list):
            raise _RefusedError(f"{name} has no consistency proof")
        if not merkle.verify_consistency(
            old_size=older.tree_size,
            new_size=newest.tree_size,
            old_root=older.root_hash,
            new_root=newest.root_hash,
            proof=[_unb64(h) for h in proof],
        ):
            raise _RefusedError(
                f"{name} (tree size {older.tree_size}) is not consistent with the "
                f"newest (tree size {newest.tree_size}): history was rewritten"
            )


def _scope(document: dict[str, Any], entries: list[BundleEntry]) -> None:
    """Every entry belongs to the bundle's counties (policies belong to all)."""
    scope = document.get("scope")
    if not isinstance(scope, dict):
        raise _RefusedError("the bundle has no scope")
    counties = scope.get("counties")
    if counties is None:
        return
    if not isinstance(counties, list):
        raise _RefusedError("the bundle's scope names no list of counties")
    for entry in entries:
        if not _is_policy(entry) and entry.county_code not in counties:
            raise _RefusedError(
                f"entry seq {entry.seq} is of county {entry.county_code}, outside "
                "the bundle's scope"
            )


def _policies(entries: list[BundleEntry], report: BundleReport) -> None:
    """Each policy file hashes to its digest, and each obligation's policy is in
    the bundle."""
    held: set[str] = set()
    for entry in entries:
        if not _is_policy(entry):
            continue
        data = entry.event.get("data") or {}
        content, digest = data.get("content"), data.get("digest")
        if not isinstance(content, str) or (
            hashlib.sha256(content.encode()).hexdigest() != digest
        ):
            raise _RefusedError(
                f"entry seq {entry.seq}: the policy's content does not hash to its "
                "digest"
            )
        held.add(str(digest))
    report.policies = len(held)
    for entry in entries:
        data = entry.event.get("data")
        digest = data.get("policy_digest") if isinstance(data, dict) else None
        if entry.topic == "mfc.obligations.v1" and digest and digest not in held:
            raise _RefusedError(
                f"entry seq {entry.seq} was decided by policy {digest}, which the "
                "bundle does not hold"
            )


def _is_policy(entry: BundleEntry) -> bool:
    """A policy file: only on the policies topic (a county's inbound event of the
    same type is the county's, not a policy)."""
    return entry.topic == POLICIES and entry.event.get("type") == POLICY_ADOPTED


def _seal(
    document: dict[str, Any], public_keys: Mapping[str, Ed25519PublicKey]
) -> None:
    found = document.get("seal")
    if not isinstance(found, dict):
        raise _RefusedError("the bundle has no seal")
    key = public_keys.get(str(found.get("key_id")))
    if key is None:
        raise _RefusedError(
            f"the bundle is sealed by an unknown key ({found.get('key_id')})"
        )
    body = {k: v for k, v in document.items() if k != "seal"}
    try:
        key.verify(_unb64(found.get("signature")), rfc8785.dumps(body))
    except (InvalidSignature, ValueError) as exc:
        raise _RefusedError(
            "the bundle's seal does not verify: its scope, list of entries or "
            "layout was altered"
        ) from exc


def entries_of(raw: bytes) -> list[dict[str, Any]]:
    """The bundle's entries as an export's lines hold them (for the compliance
    report offline); raises ValueError on a document that is not a bundle."""
    try:
        document = _document(raw)
    except _RefusedError as exc:
        raise ValueError(str(exc)) from exc
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise ValueError("the bundle has no entries list")
    return [e for e in entries if isinstance(e, dict)]
