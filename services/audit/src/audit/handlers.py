"""Audit's service layer: append consumed events, sign checkpoints, verify the log,
and derive the compliance report from the trail."""

import asyncio
import logging
import time
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
from audit.domain import bundle, compliance, merkle
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

    def _age(self) -> float:
        if self.last_checkpoint_at is None:
            return -1.0
        return (self._clock.now() - self.last_checkpoint_at).total_seconds()


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
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._directory = directory
        self._clock = clock
        self._metrics = metrics
        self._max_age = max_age
        self._periodic = Periodic(
            "audit-checkpointer",
            lambda: self.issue(force=False),
            interval=interval,
            wait_first=True,
        )

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            backfilled = 0
            async with conn.transaction():
                backfilled = await postgres.backfill_leaf_hashes(conn)
            if backfilled:
                logger.warning("gave %d earlier entries their leaf hashes", backfilled)
            latest = await postgres.latest_checkpoint(conn)
            self._metrics.tree_size.set(await postgres.tree_size(conn))
        if latest is not None:
            self._metrics.last_checkpoint_at = latest.issued_at
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def issue(self, *, force: bool = True) -> Checkpoint | None:
        """Sign the current tree head; without ``force`` only if the tree grew or
        the newest checkpoint is older than the maximum age."""
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
        return signed

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
) -> VerifyReport:
    """Recompute every leaf and root and check every checkpoint, stored and outside."""
    outside = await asyncio.to_thread(directory.read)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        stored = await postgres.checkpoints(conn)
        verifier = LogVerifier(
            checkpoints=[(c, "database") for c in stored]
            + [(c, "outside copy") for c in outside],
            public_keys=keys.trusted,
        )
        async for chunk in postgres.stored_entries(conn):
            for entry in chunk:
                verifier.add(entry)
    report = verifier.finish()
    for problem in compare_copies(stored, outside):
        report.fail(problem)
    if not report.ok:
        metrics.verify_failures.inc()
        logger.error("audit log verification failed: %s", report.problems[:3])
    return report


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
    newest = await postgres.latest_checkpoint(conn)
    if newest is None:
        raise NoCheckpointError("no checkpoint is signed yet")
    size = newest.tree_size
    rows = await postgres.bundle_rows(conn, where=where, up_to=size)
    paths = {r["seq"]: merkle.inclusion_ranges(r["seq"] - 1, size) for r in rows}
    found = await postgres.nodes(
        conn, merkle.nodes_for(r for ranges in paths.values() for r in ranges)
    )
    entries = [_bundle_entry(r, paths[r["seq"]], found, show_personal) for r in rows]
    first = rows[0]["seq"] if rows else size
    earlier = [
        bundle.EarlierCheckpoint(
            c,
            await postgres.proof_hashes(
                conn, merkle.consistency_ranges(c.tree_size, size)
            ),
        )
        for c in (await postgres.checkpoints(conn))
        if first <= c.tree_size < size
    ][-earlier_limit:]
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
) -> dict[str, Any]:
    """``counties``: those to report on (None: every county)."""
    # Policies name no county: all of them, then the counties' events.
    policies = [row["event"] for row in await postgres.policy_versions(conn)]
    events = await postgres.events_of(conn, reads=compliance.READS, counties=counties)
    return compliance.report_of_events(
        [*policies, *events],
        now=now,
        counties=counties,
        clock_from=clock_from,
        clock_to=clock_to,
    )
