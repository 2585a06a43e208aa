"""The audit log, its Merkle tree and its checkpoints on asyncpg."""

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from audit.domain import merkle
from audit.domain.checkpoint import Checkpoint
from audit.domain.entries import canonical_json, entry_leaf_hash, leaf_json
from audit.domain.merkle import leaf_hash
from shared.consumer import RawMessage
from shared.db import Conn
from shared.events import CloudEvent
from shared.published import PolicyEvent

APPEND_LOCK = "SELECT pg_advisory_xact_lock(hashtext('mfc-audit-append'))"


_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _episode_id(subject: str | None) -> str | None:
    """The subject as a UUID's text when it is one (PostgreSQL reads the hyphenated
    form as it is; any other form Python's ``UUID`` reads is written out in it)."""
    if not subject:
        return None
    if _UUID_TEXT.fullmatch(subject):
        return subject
    try:
        return str(UUID(subject))
    except ValueError:
        return None


_COPY_COLUMNS = [
    "seq", "event_id", "topic", "kafka_partition", "kafka_offset", "type", "source",
    "subject", "episode_id", "county_code", "event_time", "event", "leaf_hash",
]  # fmt: skip

_COPY_SLICE = 100
"""Entries per slice of a COPY."""

_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _copy_text(value: str | None) -> str:
    """A text value in COPY's text format: ``\\N`` for NULL, a backslash doubled,
    tab and line breaks as escapes."""
    if value is None:
        return _NULL
    if value.isprintable() and "\\" not in value:  # no tab, no line break
        return value
    return _COPY_SPECIAL.sub(lambda m: _COPY_ESCAPES[m.group()], value)


def _copy_int(value: int | None) -> str:
    return _NULL if value is None else str(int(value))


def _copy_line(
    seq: int,
    event: CloudEvent,
    message: RawMessage,
    episode: str | None,
    county: str | None,
    document: bytes,
    leaf: bytes,
) -> str:
    """An entry as a line of ``_COPY_COLUMNS``. The event is canonical JSON, which
    escapes every control character, so only its backslashes need doubling. Text
    fields are looked at together: they nearly always need no escape."""
    subject = event.subject
    event_text = document.decode().replace("\\", "\\\\")
    probe = f"{event.id}{message.topic}{event.type}{event.source}{subject}{county}"
    if probe.isprintable() and "\\" not in probe:  # no tab, line break, backslash
        return (
            f"{seq}\t{event.id}\t{message.topic}\t{_copy_int(message.partition)}\t"
            f"{_copy_int(message.offset)}\t{event.type}\t{event.source}\t"
            f"{_NULL if subject is None else subject}\t"
            f"{_NULL if episode is None else episode}\t"
            f"{_NULL if county is None else county}\t{event.time.isoformat()}\t"
            f"{event_text}\t\\\\x{leaf.hex()}\n"
        )
    return "\t".join(
        (
            str(seq),
            _copy_text(event.id),
            _copy_text(message.topic),
            _copy_int(message.partition),
            _copy_int(message.offset),
            _copy_text(event.type),
            _copy_text(event.source),
            _copy_text(subject),
            _copy_text(episode),
            _copy_text(county),
            event.time.isoformat(),  # aware (CloudEvent.time): with its offset
            event_text,
            "\\\\x" + leaf.hex() + "\n",
        )
    )


_NULL = "\\N"


@dataclass(frozen=True)
class Appended:
    seqs: list[int]
    topics: list[str]
    tree_size: int


async def tree_size(conn: Conn) -> int:
    size: int = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM log_entries")
    return size


async def nodes(conn: Conn, wanted: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Stored subtree hashes: level 0 from the entries, the rest from merkle_nodes."""
    wanted = set(wanted)
    leaves = [idx + 1 for level, idx in wanted if level == 0]
    inner = [(level, idx) for level, idx in wanted if level > 0]
    found: dict[merkle.Node, bytes] = {}
    if leaves:
        for r in await conn.fetch(
            "SELECT seq, leaf_hash FROM log_entries WHERE seq = ANY($1::bigint[])",
            leaves,
        ):
            found[(0, r["seq"] - 1)] = r["leaf_hash"]
    if inner:
        for r in await conn.fetch(
            "SELECT n.level, n.idx, n.hash FROM merkle_nodes n "
            "JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) "
            "ON n.level = w.level AND n.idx = w.idx",
            [level for level, _ in inner],
            [idx for _, idx in inner],
        ):
            found[(r["level"], r["idx"])] = r["hash"]
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"tree nodes missing: {sorted(missing)[:5]}")
    return found


async def _compact_range(conn: Conn, size: int) -> merkle.CompactRange:
    edge = merkle.CompactRange.edge_nodes(size)
    found = await nodes(conn, edge)
    return merkle.CompactRange(
        size, {level: found[(level, idx)] for level, idx in edge}
    )


async def append_batch(
    conn: Conn, items: list[tuple[CloudEvent, RawMessage]]
) -> Appended:
    """Append events not in the log yet, in order, with their leaf hashes and the
    tree nodes they complete.

    Appends are serialised by a transaction-level lock, so sequence numbers are
    gapless and in commit order: a reader paging by ``seq`` never skips an entry
    that commits later with a smaller number, and every tree size has one root.
    """
    await conn.execute(APPEND_LOCK)
    lookup = conn.fetch(
        "SELECT event_id FROM log_entries WHERE event_id = ANY($1::text[])",
        [event.id for event, _ in items],
    )
    looking = asyncio.ensure_future(lookup)
    try:
        await asyncio.sleep(0)  # let it send the query before the work below
        # One canonical JSON per event (it holds no seq), made while the database
        # looks up which events the log has: hashed into its leaf, stored as its row.
        documents = [
            canonical_json(event.model_dump(mode="json", exclude_none=True))
            for event, _ in items
        ]
    finally:
        found = await looking  # the connection is free again whatever happened
    present = {r["event_id"] for r in found}
    fresh: list[tuple[CloudEvent, RawMessage, bytes]] = []
    for (event, message), document in zip(items, documents, strict=True):
        if event.id not in present:
            present.add(event.id)
            fresh.append((event, message, document))
    size = await tree_size(conn)
    tree = await _compact_range(conn, size)
    # seq, topic, episode, county of each entry appended
    rows: list[tuple[int, str, str | None, str | None]] = []
    new_nodes: list[tuple[int, int, bytes]] = []

    async def copy_data() -> AsyncIterator[bytes]:
        """The entries as COPY text, a slice at a time, each made as the server
        stores the one before (the leaf hashed and the line written here, the rows
        parsed and indexed there: the two run side by side)."""
        lines: list[str] = []
        for event, message, document in fresh:
            seq = tree.size + 1
            leaf = leaf_hash(
                leaf_json(seq=seq, topic=message.topic, event_json=document)
            )
            for (level, idx), digest in tree.append(leaf):
                new_nodes.append((level, idx, digest))
            county = event.data.get("county_code")
            county = county if isinstance(county, str) else None
            episode = _episode_id(event.subject)
            rows.append((seq, message.topic, episode, county))
            lines.append(
                _copy_line(seq, event, message, episode, county, document, leaf)
            )
            if len(lines) == _COPY_SLICE:
                yield "".join(lines).encode()
                lines.clear()
        if lines:
            yield "".join(lines).encode()

    if fresh:
        # One COPY for the whole batch, in its text format written here: the server
        # parses it faster than an INSERT from arrays, and the event goes as the
        # very bytes its leaf hashed (the pool's jsonb codec would encode it again).
        await conn.copy_to_table(
            "log_entries", source=copy_data(), columns=_COPY_COLUMNS, format="text"
        )
    # An episode's county as the first entry of this batch that names both tells it.
    counties: dict[str, str] = {}
    for _, _, episode, county in rows:
        if episode is not None and county is not None:
            counties.setdefault(episode, county)
    if rows:
        # The counties and the completed tree nodes in one statement (one round trip).
        await conn.execute(
            "WITH c AS (INSERT INTO episode_counties (episode_id, county_code) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]) "
            "ON CONFLICT (episode_id) DO NOTHING) "
            "INSERT INTO merkle_nodes (level, idx, hash) "
            "SELECT * FROM unnest($3::smallint[], $4::bigint[], $5::bytea[])",
            list(counties),
            list(counties.values()),
            [level for level, _, _ in new_nodes],
            [idx for _, idx, _ in new_nodes],
            [digest for _, _, digest in new_nodes],
        )
    return Appended([r[0] for r in rows], [r[1] for r in rows], tree.size)


async def backfill_leaf_hashes(conn: Conn) -> int:
    """Give entries appended before the tree existed their leaf hashes and nodes.

    Such entries are a prefix of the log (every later append hashes its own)."""
    await conn.execute(APPEND_LOCK)
    rows = await conn.fetch(
        "SELECT seq, topic, event FROM log_entries WHERE leaf_hash IS NULL ORDER BY seq"
    )
    if not rows:
        return 0
    if rows[0]["seq"] != 1 or rows[-1]["seq"] != len(rows):
        raise RuntimeError("entries without a leaf hash are not a prefix of the log")
    tree = merkle.CompactRange()
    for r in rows:
        leaf = entry_leaf_hash(seq=r["seq"], topic=r["topic"], event=r["event"])
        completed = tree.append(leaf)
        await conn.execute(
            "UPDATE log_entries SET leaf_hash = $2 WHERE seq = $1", r["seq"], leaf
        )
        if completed:
            await conn.executemany(
                "INSERT INTO merkle_nodes (level, idx, hash) VALUES ($1, $2, $3)",
                [(level, idx, h) for (level, idx), h in completed],
            )
    return len(rows)


async def root_hash(conn: Conn, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.range_hash(0, size, await nodes(conn, merkle.pieces(0, size)))


async def proof_hashes(conn: Conn, ranges: list[merkle.Range]) -> list[bytes]:
    found = await nodes(conn, merkle.nodes_for(ranges))
    return [merkle.range_hash(lo, hi, found) for lo, hi in ranges]


async def leaf_at(conn: Conn, seq: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT seq, topic, leaf_hash, event, coalesce(county_code, ("
        "  SELECT county_code FROM episode_counties c WHERE c.episode_id = e.episode_id"
        ")) AS county_code FROM log_entries e WHERE seq = $1",
        seq,
    )
    return dict(row) if row else None


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #


def _checkpoint(r: Any) -> Checkpoint:
    return Checkpoint(
        tree_size=r["tree_size"],
        root_hash=r["root_hash"],
        issued_at=r["issued_at"],
        key_id=r["key_id"],
        signature=r["signature"],
        note_line=r["note_signature"],
        cosignatures=tuple(r["cosignatures"] or ()),
    )


_CHECKPOINTS = (
    "SELECT c.*, ARRAY(SELECT line FROM cosignatures s WHERE s.checkpoint_id = c.id "
    "ORDER BY witness) AS cosignatures FROM checkpoints c"
)


async def insert_checkpoint(conn: Conn, checkpoint: Checkpoint) -> None:
    await conn.execute(
        "INSERT INTO checkpoints (tree_size, root_hash, issued_at, key_id, signature, "
        "note_signature) VALUES ($1, $2, $3, $4, $5, $6)",
        checkpoint.tree_size,
        checkpoint.root_hash,
        checkpoint.issued_at,
        checkpoint.key_id,
        checkpoint.signature,
        checkpoint.note_line,
    )


async def add_cosignature(
    conn: Conn, checkpoint: Checkpoint, *, witness: str, line: str, at: datetime
) -> None:
    """A witness's cosignature of ``checkpoint`` (kept once per witness)."""
    await conn.execute(
        "INSERT INTO cosignatures (checkpoint_id, witness, line, received_at) "
        "SELECT id, $2, $3, $4 FROM checkpoints WHERE signature = $1 "
        "ON CONFLICT DO NOTHING",
        checkpoint.signature,
        witness,
        line,
        at,
    )


async def cosigned_size(conn: Conn) -> int:
    """The largest tree size a witness co-signed (0: none yet)."""
    size = await conn.fetchval(
        "SELECT max(c.tree_size) FROM checkpoints c "
        "WHERE EXISTS (SELECT 1 FROM cosignatures s WHERE s.checkpoint_id = c.id)"
    )
    return int(size or 0)


async def latest_checkpoint(conn: Conn, *, cosigned: bool = False) -> Checkpoint | None:
    """The newest checkpoint (with ``cosigned``, the newest a witness co-signed)."""
    where = (
        " WHERE EXISTS (SELECT 1 FROM cosignatures s WHERE s.checkpoint_id = c.id)"
        if cosigned
        else ""
    )
    row = await conn.fetchrow(f"{_CHECKPOINTS}{where} ORDER BY c.id DESC LIMIT 1")
    return _checkpoint(row) if row else None


async def checkpoints(conn: Conn, *, limit: int | None = None) -> list[Checkpoint]:
    rows = await conn.fetch(
        f"{_CHECKPOINTS} ORDER BY c.tree_size, c.id LIMIT $1", limit
    )
    return [_checkpoint(r) for r in rows]


# --------------------------------------------------------------------------- #
# Queries
# --------------------------------------------------------------------------- #

ENTRY_COLUMNS = (
    "seq, event_id, topic, type, source, subject, episode_id, county_code, "
    "event_time, appended_at, leaf_hash, event"
)

# A county scope includes the policy files (they name no county and hold no personal
# data), so an auditor's export carries the policies its episodes were decided by.
_FILTERS = """
    WHERE seq > $1
      AND ($3::uuid IS NULL OR episode_id = $3)
      AND ($4::text[] IS NULL OR county_code = ANY($4) OR (
            county_code IS NULL AND episode_id IN (
                SELECT episode_id FROM episode_counties WHERE county_code = ANY($4)))
            OR (type = 'mfc.policy.adopted' AND topic = 'mfc.policies.v1'))
      AND ($5::text IS NULL OR type = $5)
      AND ($6::timestamptz IS NULL OR event_time >= $6)
      AND ($7::timestamptz IS NULL OR event_time < $7)
"""


@dataclass(frozen=True)
class EntryFilter:
    episode_id: UUID | None = None
    counties: list[str] | None = None
    """None: every county (and entries of none)."""
    type_: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None


async def entries(
    conn: Conn, *, after_seq: int, limit: int, where: EntryFilter = EntryFilter()
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM log_entries {_FILTERS} ORDER BY seq LIMIT $2",
        after_seq,
        limit,
        *_filter_values(where),
    )
    return [dict(r) for r in rows]


def _filter_values(where: EntryFilter) -> tuple[Any, ...]:
    """``_FILTERS``' parameters $3 to $7."""
    return (
        where.episode_id,
        where.counties,
        where.type_,
        where.time_from,
        where.time_to,
    )


async def stream_entries(
    conn: Conn,
    *,
    where: EntryFilter = EntryFilter(),
    after: int = 0,
    chunk: int = 2000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching entry after ``seq`` ``after`` in order, a chunk at a time
    (keyset pages: any size streams in bounded memory, and concurrent appends
    cannot shift pages)."""
    while True:
        rows = await entries(conn, after_seq=after, limit=chunk, where=where)
        if not rows:
            return
        yield rows
        after = rows[-1]["seq"]
        if len(rows) < chunk:
            return


async def bundle_rows(
    conn: Conn, *, where: EntryFilter, up_to: int
) -> list[dict[str, Any]]:
    """The matching entries of the tree of ``up_to`` entries, each with its county
    (an alert's or prompt's is its episode's), and every policy file of that tree
    whatever its time (the entries' obligations cite them)."""
    rows = await conn.fetch(
        "SELECT seq, topic, leaf_hash, event, coalesce(county_code, ("
        "  SELECT county_code FROM episode_counties c WHERE c.episode_id = e.episode_id"
        f")) AS county_code FROM log_entries e {_FILTERS} AND seq <= $2 ORDER BY seq",
        0,
        up_to,
        *_filter_values(where),
    )
    policies = await conn.fetch(
        "SELECT seq, topic, leaf_hash, event, NULL AS county_code FROM log_entries "
        "WHERE type = $1 AND topic = 'mfc.policies.v1' AND seq <= $2",
        POLICY_ADOPTED,
        up_to,
    )
    found = {r["seq"]: dict(r) for r in [*policies, *rows]}
    return [found[seq] for seq in sorted(found)]


class StoredRow(asyncpg.Record):
    """A row of ``stored_entries``: ``StoredEntry``'s fields in its order, the event
    as its JSON text. Handed over as asyncpg made it: a tuple built per row cost
    verify a tenth of its time."""

    @property
    def seq(self) -> int:
        return int(self[0])

    @property
    def topic(self) -> str:
        return str(self[1])

    @property
    def leaf_hash(self) -> bytes:
        return bytes(self[2])

    @property
    def event(self) -> str | None:
        event: str | None = self[3]
        return event


async def stored_entries(
    conn: Conn, *, chunk: int = 5000
) -> AsyncGenerator[list[StoredRow], None]:
    """Every entry in ``seq`` order, a chunk at a time. The next chunk is asked for
    before this one is handed over, so the database reads it while the caller
    hashes this one (verify spends about a third of its time waiting otherwise).
    A caller that stops early closes it (``contextlib.aclosing``), which calls that
    query off; until then the connection is busy.

    The event comes as text, for the caller to parse as it hashes it (``LogVerifier``
    does): parsed on arrival, a whole chunk of events would be alive at once."""
    query = (
        "SELECT seq, topic, coalesce(leaf_hash, ''::bytea), event::text "
        "FROM log_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
    )
    rows = await conn.fetch(query, 0, chunk, record_class=StoredRow)
    while rows:
        following = asyncio.ensure_future(
            conn.fetch(query, rows[-1][0], chunk, record_class=StoredRow)
        )
        try:
            await asyncio.sleep(0)  # let it send the query before the caller works
            yield rows
            rows = await following
        finally:
            if not following.done():  # the caller stopped early
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following


async def events_of(
    conn: Conn,
    *,
    reads: Mapping[str, Sequence[str]],
    counties: list[str] | None,
    up_to: int | None = None,
) -> list[dict[str, Any]]:
    """The events of these types on these topics (``reads``), in log order; with
    ``counties``, those of these counties; with ``up_to``, of the tree of that
    size."""
    pairs = [(topic, kind) for topic, kinds in reads.items() for kind in kinds]
    rows = await conn.fetch(
        "SELECT event FROM log_entries WHERE type = ANY($2::text[]) "
        "AND (topic, type) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
        "AND ($3::text[] IS NULL OR county_code = ANY($3)) "
        "AND ($4::bigint IS NULL OR seq <= $4) ORDER BY seq",
        [topic for topic, _ in pairs],
        [kind for _, kind in pairs],
        counties,
        up_to,
    )
    return [r["event"] for r in rows]


POLICY_ADOPTED = PolicyEvent.ADOPTED.value


async def policy_versions(
    conn: Conn, digest: str | None = None
) -> list[dict[str, Any]]:
    """The policy files announced to the trail (``mfc.policy.adopted``, keyed by
    digest in ``subject``), oldest first; with ``digest``, that one's entry."""
    rows = await conn.fetch(
        "SELECT seq, appended_at, event FROM log_entries WHERE type = $1 "
        "AND topic = 'mfc.policies.v1' AND ($2::text IS NULL OR subject = $2) "
        "ORDER BY seq",
        POLICY_ADOPTED,
        digest,
    )
    return [dict(r) for r in rows]
