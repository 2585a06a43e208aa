"""Verify a whole log: recompute every leaf from its content, rebuild the tree, and
check every checkpoint (signature, and root at its size) from the database and from
the copies kept outside it. Pure: the caller streams entries in and gets a report
naming the first entry and the first checkpoint that fail.

Why outside copies matter: a database superuser can disable the triggers and rewrite
rows *and* their stored hashes consistently; the only evidence left is a signed root
that was written somewhere the database cannot reach.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain import note
from audit.domain.checkpoint import Checkpoint, signature_valid
from audit.domain.entries import entry_leaf_hash
from audit.domain.merkle import CompactRange
from shared.db import decode_json

MAX_PROBLEMS = 100


class StoredEntry(NamedTuple):
    """A tuple: verify builds one per entry, a million for a million-entry log."""

    seq: int
    topic: str
    leaf_hash: bytes
    """The hash stored with the entry."""
    event: dict[str, Any] | None
    """The full event, or None where it was redacted (only the hash can be checked)."""


@dataclass
class VerifyReport:
    ok: bool = True
    tree_size: int = 0
    contents_checked: int = 0
    """Entries whose content was rehashed (not redacted)."""
    checkpoints_checked: int = 0
    root_hash: str | None = None
    first_bad_entry: int | None = None
    first_bad_checkpoint: dict[str, Any] | None = None
    witnessed_size: int | None = None
    """The largest checkpoint a trusted witness co-signed (None: no witness keys
    given, so cosignatures were not checked)."""
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "contents_checked": self.contents_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "witnessed_size": self.witnessed_size,
            "first_bad_entry": self.first_bad_entry,
            "first_bad_checkpoint": self.first_bad_checkpoint,
            "problems": self.problems,
        }


def _describe(checkpoint: Checkpoint, origin: str) -> dict[str, Any]:
    return {**checkpoint.to_json(), "origin": origin}


def _is_key_of(witness: note.Witness, signature: note.Signature) -> bool:
    key = note.key_id(witness.name, note.COSIGNATURE_V1, witness.public_key)
    return witness.name == signature.name and key == signature.key_id


class LogVerifier:
    """Feed entries in ``seq`` order with ``add``; call ``finish`` once."""

    def __init__(
        self,
        *,
        checkpoints: Iterable[tuple[Checkpoint, str]],
        public_keys: dict[str, Ed25519PublicKey],
        witnesses: Sequence[note.Witness] = (),
        require_witnessed: bool = True,
    ) -> None:
        """``witnesses``: their cosignatures are checked; with
        ``require_witnessed``, at least one checkpoint must carry one (offline, where
        the witness's own record cannot be asked)."""
        self.report = VerifyReport()
        self._witnesses = witnesses
        self._require_witnessed = require_witnessed
        if witnesses:
            self.report.witnessed_size = 0
        self._expected: dict[int, list[tuple[bytes, str]]] = defaultdict(list)
        self._tree = CompactRange()
        self._at_size: dict[int, list[tuple[Checkpoint, str]]] = defaultdict(list)
        for checkpoint, origin in checkpoints:
            self.report.checkpoints_checked += 1
            if not signature_valid(checkpoint, public_keys):
                self._bad_checkpoint(
                    checkpoint, origin, "signature does not verify with a trusted key"
                )
            self._check_cosignatures(checkpoint, origin)
            self._at_size[checkpoint.tree_size].append((checkpoint, origin))
        self._check_roots_at(0)

    def _check_cosignatures(self, checkpoint: Checkpoint, origin: str) -> None:
        """Each trusted witness's cosignature must verify; the largest witnessed
        size is reported."""
        if not self._witnesses:
            return
        text = checkpoint.note_text()
        for line in checkpoint.cosignatures:
            try:
                signature = note.parse_line(line)
            except note.NoteError:
                self._bad_checkpoint(checkpoint, origin, "a cosignature is malformed")
                continue
            # A key is its name and key ID: an old key of a rotated witness is
            # simply unknown (ignored), as c2sp.org/signed-note asks.
            witness = next(
                (w for w in self._witnesses if _is_key_of(w, signature)), None
            )
            if witness is None:
                continue
            if (
                note.cosigned_at(text, signature, witness.name, witness.public_key)
                is None
            ):
                self._bad_checkpoint(
                    checkpoint,
                    origin,
                    f"witness {witness.name}'s cosignature does not verify",
                )
                continue
            size = self.report.witnessed_size or 0
            self.report.witnessed_size = max(size, checkpoint.tree_size)

    def _bad_checkpoint(self, checkpoint: Checkpoint, origin: str, why: str) -> None:
        if self.report.first_bad_checkpoint is None or (
            checkpoint.tree_size < self.report.first_bad_checkpoint["tree_size"]
        ):
            self.report.first_bad_checkpoint = _describe(checkpoint, origin)
        self.report.fail(
            f"checkpoint of tree size {checkpoint.tree_size} ({origin}, issued "
            f"{checkpoint.issued_at.isoformat()}): {why}"
        )

    def _bad_entry(self, seq: int, why: str) -> None:
        if self.report.first_bad_entry is None:
            self.report.first_bad_entry = seq
        self.report.fail(f"entry {seq}: {why}")

    def expect(self, size: int, root: bytes, who: str) -> None:
        """Another party's view: the tree of ``size`` entries has ``root`` (a
        witness's latest co-signed checkpoint). Call before ``add``."""
        self._expected[size].append((root, who))

    def _check_expected(self, size: int) -> None:
        for root, who in self._expected.pop(size, []):
            if root != self._tree.root():
                self.report.fail(
                    f"{who} co-signed the tree of {size} entries with another root "
                    "hash than this log's: its history was rewritten"
                )

    def _check_roots_at(self, size: int) -> None:
        self._check_expected(size)
        if size not in self._at_size:
            return
        root = self._tree.root()
        for checkpoint, origin in self._at_size.pop(size):
            if checkpoint.root_hash != root:
                self._bad_checkpoint(
                    checkpoint, origin, "root hash differs from the recomputed tree"
                )

    def add(self, entry: StoredEntry) -> None:
        self.add_all((entry,))

    def add_all(
        self, entries: Iterable[Iterable[Any]], *, events_as_text: bool = False
    ) -> None:
        """``add`` each entry in turn: a ``StoredEntry`` or any row of its four
        fields in its order (a database row as it comes). With ``events_as_text``,
        each event is its JSON text as stored, parsed here (a value that is itself
        a string is never taken for text otherwise). One loop for a chunk: its body
        runs once per entry, a million times for a million entries."""
        tree = self._tree
        report = self.report
        at_size, expected_roots = self._at_size, self._expected
        for seq, topic, stored, event in entries:
            expected = tree.size + 1
            if seq != expected:
                self._bad_entry(expected, f"missing (the next entry has seq {seq})")
            leaf = stored
            if event is not None:
                if events_as_text:
                    # Parsed here, not as the row arrives: the event dies young (a
                    # chunk of parsed events alive at once costs the cyclic
                    # garbage collector as much as a sixth of verify's time).
                    event = decode_json(event)
                report.contents_checked += 1
                leaf = entry_leaf_hash(seq=seq, topic=topic, event=event)
                if leaf != stored:
                    self._bad_entry(seq, "content does not match its leaf hash")
            # The recomputed hash goes into the tree, so a content change that was
            # covered up by rewriting the stored hash still breaks the signed roots.
            tree.push(leaf)
            if expected in at_size or expected in expected_roots:
                self._check_roots_at(expected)

    def finish(self) -> VerifyReport:
        self.report.tree_size = self._tree.size
        self.report.root_hash = self._tree.root().hex()
        for size in sorted(self._at_size):
            for checkpoint, origin in self._at_size[size]:
                self._bad_checkpoint(
                    checkpoint,
                    origin,
                    f"signed for {size} entries but the log has only {self._tree.size}",
                )
        self._at_size.clear()
        for size in sorted(self._expected):
            for _, who in self._expected[size]:
                self.report.fail(
                    f"{who} co-signed a tree of {size} entries but the log has only "
                    f"{self._tree.size}: entries were removed"
                )
        self._expected.clear()
        if (
            self._witnesses
            and self._require_witnessed
            and not self.report.witnessed_size
        ):
            self.report.fail(
                "no checkpoint is co-signed by a trusted witness: the log's history "
                "rests on its own key alone"
            )
        return self.report


def compare_copies(
    stored: Iterable[Checkpoint], outside: Iterable[Checkpoint]
) -> list[str]:
    """Checkpoints written outside the database that the database lacks."""
    known = {(c.tree_size, c.root_hash, c.signature) for c in stored}
    return [
        f"checkpoint of tree size {c.tree_size} issued {c.issued_at.isoformat()} is "
        "outside the database but not in it"
        for c in outside
        if (c.tree_size, c.root_hash, c.signature) not in known
    ]
