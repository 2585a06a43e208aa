"""Audit's service layer: append consumed events, sign checkpoints, verify the log,
and derive the compliance report from the trail."""

import asyncio
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from audit.adapters import postgres
from audit.adapters.outside import CheckpointDirectory
from audit.adapters.witness import (
    WitnessClient,
    WitnessConflictError,
    WitnessRefusedError,
    WitnessUnavailableError,
)
from audit.domain import bundle, compliance, merkle, note
from audit.domain import checkpoint as signing
from audit.domain.checkpoint import Checkpoint
from audit.domain.entries import contains_personal_fields, redact
from audit.domain.verify import LogVerifier, VerifyReport, compare_copies
from shared import topics
from shared.clock import Clock
from shared.consumer import BatchHandler, RawMessage
from shared.db import Conn
from shared.events import CloudEvent
from shared.outbox import enqueue
from shared.periodic import Periodic
from shared.published import CHECKPOINT_SIGNED

logger = logging.getLogger(__name__)

SOURCE = "service/audit"

VERIFY_SLICE = 256
"""Entries verify hashes between looks at the socket: about what PostgreSQL sends
before a full socket buffer stops it (some 200 KB of rows)."""


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry, clock: Clock) -> None:
        self._clock = clock
        self.last_checkpoint_at: datetime | None = None
        self.appended = Counter(
            "mfc_audit_entries_appended_total",
            "Entries appended to the log",
            ["topic"],
            registry=registry,
        )
        self.append_seconds = Histogram(
            "mfc_audit_append_seconds",
            "Time to append one batch (one transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.tree_size = Gauge(
            "mfc_audit_tree_size",
            "Entries in the log (Merkle tree size)",
            registry=registry,
        )
        self.checkpoint_age = Gauge(
            "mfc_audit_last_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint (-1: none yet)",
            registry=registry,
        )
        self.checkpoint_age.set_function(self._age)
        self.checkpoints = Counter(
            "mfc_audit_checkpoints_total", "Checkpoints signed", registry=registry
        )
        self.outside_failures = Counter(
            "mfc_audit_checkpoint_copy_failures_total",
            "Checkpoints that could not be copied outside the database",
            registry=registry,
        )
        self.verify_failures = Counter(
            "mfc_audit_verify_failures_total",
            "Verifications of the log that found a problem",
            registry=registry,
        )
        self.last_cosigned_at: datetime | None = None
        self.cosigned_age = Gauge(
            "mfc_audit_last_cosigned_age_seconds",
            "Seconds since the newest checkpoint a witness co-signed was signed "
            "(-1: none yet)",
            registry=registry,
        )
        self.cosigned_age.set_function(lambda: self._since(self.last_cosigned_at))
        self.witness_failures = Counter(
            "mfc_audit_witness_failures_total",
            "Checkpoints a witness did not co-sign: unavailable (tried again at the "
            "next checkpoint) or refused (it holds another history)",
            ["reason"],
            registry=registry,
        )

    def _age(self) -> float:
        return self._since(self.last_checkpoint_at)

    def _since(self, moment: datetime | None) -> float:
        if moment is None:
            return -1.0
        return (self._clock.now() - moment).total_seconds()


def make_append_handler(metrics: AuditMetrics) -> BatchHandler:
    async def append_events(
        conn: Conn, items: list[tuple[CloudEvent, RawMessage]]
    ) -> None:
        started = time.perf_counter()
        appended = await postgres.append_batch(conn, items)
        metrics.append_seconds.observe(time.perf_counter() - started)
        for topic in appended.topics:
            metrics.appended.labels(topic).inc()
        metrics.tree_size.set(appended.tree_size)

    return append_events


@dataclass(frozen=True)
class Keys:
    signing: Ed25519PrivateKey
    trusted: dict[str, Ed25519PublicKey]
    witnesses: tuple[note.Witness, ...] = ()
    """The witnesses whose cosignatures verify checks."""


class Checkpointer:
    """Signs the tree head at an interval (and on demand), stores it, publishes it
    on ``mfc.audit.checkpoints.v1`` and copies it outside the database."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        keys: Keys,
        directory: CheckpointDirectory,
        clock: Clock,
        metrics: AuditMetrics,
        interval: float,
        max_age: float,
        witness: WitnessClient | None = None,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._directory = directory
        self._clock = clock
        self._metrics = metrics
        self._max_age = max_age
        self.witness = witness
        self._periodic = Periodic(
            "audit-checkpointer", self._tick, interval=interval, wait_first=True
        )

    async def _tick(self) -> None:
        await self.issue(force=False, cosign=False)
        await self.cosign()

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            backfilled = 0
            async with conn.transaction():
                backfilled = await postgres.backfill_leaf_hashes(conn)
            if backfilled:
                logger.warning("gave %d earlier entries their leaf hashes", backfilled)
            latest = await postgres.latest_checkpoint(conn)
            cosigned = await postgres.latest_checkpoint(conn, cosigned=True)
            self._metrics.tree_size.set(await postgres.tree_size(conn))
        if latest is not None:
            self._metrics.last_checkpoint_at = latest.issued_at
        if cosigned is not None:
            self._metrics.last_cosigned_at = cosigned.issued_at
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def issue(
        self, *, force: bool = True, cosign: bool = True
    ) -> Checkpoint | None:
        """Sign the current tree head; without ``force`` only if the tree grew or
        the newest checkpoint is older than the maximum age. With ``cosign``, the
        witness is asked to co-sign it at once."""
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            # The append lock pins the tree size: the root is of exactly that tree.
            await conn.execute(postgres.APPEND_LOCK)
            size = await postgres.tree_size(conn)
            if not force and self._fresh(
                await postgres.latest_checkpoint(conn), size, now
            ):
                return None
            root = await postgres.root_hash(conn, size)
            signed = signing.sign(
                self._keys.signing, tree_size=size, root_hash=root, issued_at=now
            )
            await postgres.insert_checkpoint(conn, signed)
            await enqueue(
                conn, topic=topics.AUDIT_CHECKPOINTS, event=_signed_event(signed)
            )
        self._metrics.checkpoints.inc()
        self._metrics.last_checkpoint_at = signed.issued_at
        await self._copy_outside(signed)
        if cosign:
            await self.cosign()
        return signed

    async def cosign(self) -> None:
        """Ask the witness to co-sign the newest checkpoint, with a consistency
        proof from the last one it co-signed. Never raises: a witness that is down
        or refuses delays co-signing (a metric and an alert), never appends."""
        if self.witness is None:
            return
        try:
            async with self._pool.acquire() as conn:
                await self._cosign(conn, self.witness)
        except (WitnessUnavailableError, OSError, asyncpg.PostgresError) as exc:
            self._metrics.witness_failures.labels("unavailable").inc()
            logger.warning("the witness could not co-sign now: %s", exc)
        except WitnessRefusedError as exc:
            self._metrics.witness_failures.labels("refused").inc()
            logger.error("the witness refuses to co-sign the checkpoint: %s", exc)
        except Exception:  # a malformed answer: never let it reach the caller
            self._metrics.witness_failures.labels("failed").inc()
            logger.exception("co-signing failed")

    async def _cosign(self, conn: Conn, witness: WitnessClient) -> None:
        latest = await postgres.latest_checkpoint(conn)
        signed_note = latest.note() if latest is not None else None
        if latest is None or signed_note is None or latest.cosignatures:
            return
        old = await postgres.cosigned_size(conn)
        for _ in range(2):  # once more from the size the witness says it holds
            proof: list[bytes] = []
            if 0 < old < latest.tree_size:
                ranges = merkle.consistency_ranges(old, latest.tree_size)
                proof = await postgres.proof_hashes(conn, ranges)
            try:
                lines = await witness.add_checkpoint(
                    old_size=old, proof=proof, signed_note=signed_note
                )
            except WitnessConflictError as conflict:
                if conflict.size > latest.tree_size:
                    return  # another replica had a newer checkpoint co-signed
                # At our size too, ask again from it: the witness co-signs the same
                # root and refuses another one (a history rewritten at that size).
                old = conflict.size
                continue
            await self._keep(conn, latest, lines)
            return
        raise WitnessRefusedError(409, f"the witness holds size {old}")

    async def _keep(self, conn: Conn, latest: Checkpoint, lines: list[str]) -> None:
        """Keep the cosignatures that verify with a trusted witness key (the table
        is append-only: nothing unchecked goes in)."""
        text, now, kept = latest.note_text(), self._clock.now(), 0
        for line in lines:
            signature = note.parse_line(line)
            if not note.witnessed_by(text, [signature], list(self._keys.witnesses)):
                logger.error("a cosignature from %s does not verify", signature.name)
                continue
            await postgres.add_cosignature(
                conn, latest, witness=signature.name, line=line, at=now
            )
            kept += 1
        if not kept:
            raise WitnessRefusedError(200, "no cosignature by a trusted witness key")
        self._metrics.last_cosigned_at = latest.issued_at

    def _fresh(self, latest: Checkpoint | None, size: int, now: datetime) -> bool:
        """The newest checkpoint covers this tree and is younger than the maximum age."""
        return (
            latest is not None
            and latest.tree_size == size
            and (now - latest.issued_at).total_seconds() < self._max_age
        )

    async def _copy_outside(self, signed: Checkpoint) -> None:
        try:
            await asyncio.to_thread(self._directory.write, signed)
        except OSError:
            # The checkpoint stands in the database and on the topic; the next one
            # covers this tree too. Loud, because verify relies on outside copies.
            self._metrics.outside_failures.inc()
            logger.exception("could not copy checkpoint %d outside", signed.tree_size)


def _signed_event(signed: Checkpoint) -> CloudEvent:
    """``mfc.audit.checkpoint.signed`` for other systems to keep a copy."""
    return CloudEvent.new(
        type=CHECKPOINT_SIGNED,
        source=SOURCE,
        subject=None,
        data=signed.to_json(),
        time=signed.issued_at,
    )


async def verify_log(
    pool: asyncpg.Pool,
    *,
    keys: Keys,
    directory: CheckpointDirectory,
    metrics: AuditMetrics,
    witness: WitnessClient | None = None,
) -> VerifyReport:
    """Recompute every leaf and root and check every checkpoint, stored and outside,
    with the witnesses' cosignatures, and the tree against the latest checkpoint
    the witness co-signed."""
    outside = await asyncio.to_thread(directory.read)
    # Asked first: what the witness co-signed was committed before it was
    # submitted, so the snapshot below holds it.
    view, trouble = await _witness_view(witness, keys) if witness else (None, None)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        stored = await postgres.checkpoints(conn)
        verifier = LogVerifier(
            checkpoints=[(c, "database") for c in stored]
            + [(c, "outside copy") for c in outside],
            public_keys=keys.trusted,
            witnesses=keys.witnesses,
            # Online, the witness's record is asked instead: a deployment whose
            # first checkpoint is not co-signed yet is not a failure.
            require_witnessed=False,
        )
        if view is not None:
            verifier.expect(view.size, view.root_hash, "the witness")
        async with aclosing(postgres.stored_entries(conn)) as chunks:
            async for chunk in chunks:
                for start in range(0, len(chunk), VERIFY_SLICE):
                    verifier.add_all(
                        chunk[start : start + VERIFY_SLICE], events_as_text=True
                    )
                    # The next chunk streams in meanwhile: read what has come, or
                    # the database stops once a socket buffer's worth waits.
                    await asyncio.sleep(0)
    report = verifier.finish()
    if trouble is not None:
        report.fail(trouble)
    for problem in compare_copies(stored, outside):
        report.fail(problem)
    if not report.ok:
        metrics.verify_failures.inc()
        logger.error("audit log verification failed: %s", report.problems[:3])
    return report


async def _witness_view(
    witness: WitnessClient, keys: Keys
) -> tuple[note.CheckpointText | None, str | None]:
    """The tree the witness last co-signed (its cosignature checked), or why it
    could not be used: this log's tree of that size must have that root."""
    try:
        view = await witness.latest(signing.LOG_NAME)
    except WitnessUnavailableError as exc:
        logger.warning("verify could not ask the witness: %s", exc)
        return None, (
            f"the witness could not be asked ({exc}): the log was not checked "
            "against its record; verify again once it answers"
        )
    if view is None:
        return None, None  # it has co-signed nothing yet
    try:
        text, lines = note.split(view)
        checkpoint = note.checkpoint_text(text)
    except note.NoteError as exc:
        return None, f"the witness's record is malformed: {exc}"
    if checkpoint.origin != signing.LOG_NAME or not note.witnessed_by(
        text, lines, list(keys.witnesses)
    ):
        return None, "the witness's record is not co-signed by a trusted witness key"
    return checkpoint, None


class NoCheckpointError(LookupError):
    """No checkpoint is signed yet, so nothing can be proven."""


async def proof_bundle(
    conn: Conn,
    *,
    keys: Keys,
    now: datetime,
    where: postgres.EntryFilter,
    show_personal: bool,
    earlier_limit: int = 20,
) -> bytes:
    """The selected entries with their proofs against the newest checkpoint, the
    checkpoints signed since the first of them with consistency proofs, sealed."""
    # The newest checkpoint a witness co-signed, when there is one: the bundle then
    # proves its entries against a tree someone outside the log has seen.
    newest = await postgres.latest_checkpoint(
        conn, cosigned=True
    ) or await postgres.latest_checkpoint(conn)
    if newest is None:
        raise NoCheckpointError("no checkpoint is signed yet")
    size = newest.tree_size
    rows = await postgres.bundle_rows(conn, where=where, up_to=size)
    paths = {r["seq"]: merkle.inclusion_ranges(r["seq"] - 1, size) for r in rows}
    # The period's checkpoints: from the first entry of the scope (not the policy
    # files, which are there whatever their time), the newest ones.
    scoped = [r["seq"] for r in rows if r["topic"] != topics.POLICIES]
    first = scoped[0] if scoped else size
    chosen = [
        c for c in await postgres.checkpoints(conn) if first <= c.tree_size < size
    ][-earlier_limit:]
    consistency = {
        c.tree_size: merkle.consistency_ranges(c.tree_size, size) for c in chosen
    }
    # Every hash the bundle's proofs need, in one lookup.
    found = await postgres.nodes(
        conn,
        merkle.nodes_for(
            r for ranges in [*paths.values(), *consistency.values()] for r in ranges
        ),
    )
    entries = [_bundle_entry(r, paths[r["seq"]], found, show_personal) for r in rows]
    earlier = [
        bundle.EarlierCheckpoint(
            c,
            [merkle.range_hash(lo, hi, found) for lo, hi in consistency[c.tree_size]],
        )
        for c in chosen
    ]
    scope = {
        "counties": where.counties,
        "from": where.time_from.isoformat() if where.time_from else None,
        "to": where.time_to.isoformat() if where.time_to else None,
    }
    return bundle.make(
        scope=scope,
        made_at=now,
        checkpoint=newest,
        entries=entries,
        earlier=earlier,
        key=keys.signing,
    )


def _bundle_entry(
    row: dict[str, Any],
    ranges: list[merkle.Range],
    nodes: dict[merkle.Node, bytes],
    show_personal: bool,
) -> bundle.BundleEntry:
    event = row["event"]
    redacted = not show_personal and contains_personal_fields(event)
    return bundle.BundleEntry(
        seq=row["seq"],
        topic=row["topic"],
        county_code=row["county_code"],
        redacted=redacted,
        event=redact(event) if redacted else event,
        leaf_hash=row["leaf_hash"],
        audit_path=[merkle.range_hash(lo, hi, nodes) for lo, hi in ranges],
    )


async def compliance_report(
    conn: Conn,
    *,
    now: datetime,
    counties: list[str] | None,
    clock_from: datetime | None,
    clock_to: datetime | None,
    up_to: int | None = None,
) -> dict[str, Any]:
    """``counties``: those to report on (None: every county); ``up_to``: the
    report of the log's first entries only (a checkpoint's tree, as a bundle
    proves it)."""
    # Policies name no county: all of them, then the counties' events.
    policies = [
        row["event"]
        for row in await postgres.policy_versions(conn)
        if up_to is None or row["seq"] <= up_to
    ]
    events = await postgres.events_of(
        conn, reads=compliance.READS, counties=counties, up_to=up_to
    )
    return compliance.report_of_events(
        [*policies, *events],
        now=now,
        counties=counties,
        clock_from=clock_from,
        clock_to=clock_to,
    )
