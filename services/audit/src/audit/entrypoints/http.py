"""The auditor API: entries and trails (JSON pages, or JSON lines / CSV streams of any
size), inclusion and consistency proofs, checkpoints, verification, compliance."""

import base64
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel

from audit.adapters import postgres
from audit.adapters.outside import CheckpointDirectory
from audit.adapters.postgres import EntryFilter
from audit.domain import compliance, merkle
from audit.domain.checkpoint import public_pem
from audit.domain.entries import contains_personal_fields, redact
from audit.handlers import (
    AuditMetrics,
    Checkpointer,
    Keys,
    NoCheckpointError,
    compliance_report,
    verify_log,
)
from audit.handlers import proof_bundle as make_bundle
from shared.auth import Principal, Role
from shared.runtime import ServiceRuntime


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


class EntryPage(BaseModel):
    entries: list[dict[str, Any]]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; stable while new entries are appended."""


ENTRY_CSV_COLUMNS = (
    "seq",
    "event_id",
    "topic",
    "type",
    "source",
    "subject",
    "episode_id",
    "county_code",
    "event_time",
    "appended_at",
    "leaf_hash",
    "redacted",
    "event",
)


class PolicySummary(BaseModel):
    digest: str
    version: str
    file_name: str
    adopted_at: datetime
    """When a notifier first announced it (the first of its replicas or restarts)."""
    adopted_by: str
    seq: int
    """The trail entry that holds it (an auditor of every county can ask its inclusion
    proof: ``/v1/audit/proof/{seq}``)."""

    @classmethod
    def of(cls, row: dict[str, Any]) -> "PolicySummary":
        data = row["event"]["data"]
        fields = {k: data[k] for k in ("digest", "version", "file_name", "adopted_at")}
        return cls(**fields, adopted_by=data["adopted_by"], seq=row["seq"])


class PolicyVersion(PolicySummary):
    content: str
    """The TOML file exactly as loaded: its sha256 is ``digest``."""

    @classmethod
    def of(cls, row: dict[str, Any]) -> "PolicyVersion":
        summary = PolicySummary.of(row)
        return cls(**summary.model_dump(), content=row["event"]["data"]["content"])


class PolicyList(BaseModel):
    policies: list[PolicySummary]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def present(row: dict[str, Any], *, show_personal: bool) -> dict[str, Any]:
    """An entry as answered: personal fields redacted unless allowed."""
    event = row["event"]
    redacted = not show_personal and contains_personal_fields(event)
    return {
        "seq": row["seq"],
        "event_id": row["event_id"],
        "topic": row["topic"],
        "type": row["type"],
        "source": row["source"],
        "subject": row["subject"],
        "episode_id": str(row["episode_id"]) if row["episode_id"] else None,
        "county_code": row["county_code"],
        "event_time": row["event_time"].isoformat(),
        "appended_at": row["appended_at"].isoformat(),
        "leaf_hash": _b64(row["leaf_hash"]) if row["leaf_hash"] else None,
        "redacted": redacted,
        "event": redact(event) if redacted else event,
    }


def _may_see_personal(principal: Principal) -> bool:
    # Not implied by admin: seeing a child's personal data is its own grant.
    return Role.AUDITOR_PII in principal.roles


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


EXPORTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with format=jsonl or csv the whole export",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
"""The export formats an answer may take besides JSON."""


def create_router(
    runtime: ServiceRuntime,
    *,
    keys: Callable[[], Keys],
    directory: CheckpointDirectory,
    checkpointer: Callable[[], Checkpointer],
    metrics: AuditMetrics,
) -> APIRouter:
    """Every route needs an auditor's token; answers hold the caller's counties only,
    with personal fields redacted unless the caller has ``auditor_pii``."""
    auditor = Depends(runtime.auth.require(Role.AUDITOR, Role.AUDITOR_PII))
    router = APIRouter(prefix="/v1/audit", tags=["audit"])

    def stream(
        where: EntryFilter, after: int, fmt: Format, *, show_personal: bool
    ) -> StreamingResponse:
        async def lines() -> AsyncIterator[str]:
            if fmt is Format.CSV:
                yield _csv_line(list(ENTRY_CSV_COLUMNS))
            async with runtime.pool.acquire() as conn:
                async for chunk in postgres.stream_entries(
                    conn, where=where, after=after
                ):
                    for row in chunk:
                        entry = present(row, show_personal=show_personal)
                        if fmt is Format.CSV:
                            entry["event"] = json.dumps(entry["event"], sort_keys=True)
                            yield _csv_line([entry[c] for c in ENTRY_CSV_COLUMNS])
                        else:
                            yield json.dumps(entry, sort_keys=True) + "\n"

        media = "text/csv" if fmt is Format.CSV else "application/x-ndjson"
        return StreamingResponse(lines(), media_type=media)

    @router.get("/entries", response_model=EntryPage, responses=EXPORTS)
    async def list_entries(
        principal: Annotated[Principal, auditor],
        episode_id: UUID | None = None,
        county: str | None = None,
        type: str | None = None,
        from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        to: AwareDatetime | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        format: Format = Format.JSON,
    ) -> Any:
        """Entries in log order. ``format=jsonl`` or ``csv`` streams every match
        (from ``cursor`` on) instead of one page."""
        after = 0
        if cursor is not None:
            if not cursor.isdigit():
                raise _invalid("cursor", "invalid cursor")
            after = int(cursor)
        counties = principal.county_filter(county)
        show_personal = _may_see_personal(principal)
        where = EntryFilter(
            episode_id=episode_id,
            counties=counties,
            type_=type,
            time_from=from_,
            time_to=to,
        )
        if format is not Format.JSON:
            return stream(where, after, format, show_personal=show_personal)
        if counties == []:
            return EntryPage(entries=[], next_cursor=None)
        async with runtime.pool.acquire() as conn:
            rows = await postgres.entries(
                conn, after_seq=after, limit=limit, where=where
            )
        next_cursor = str(rows[-1]["seq"]) if len(rows) == limit else None
        return EntryPage(
            entries=[present(r, show_personal=show_personal) for r in rows],
            next_cursor=next_cursor,
        )

    @router.get("/episodes/{episode_id}/trail", responses=EXPORTS)
    async def episode_trail(
        episode_id: UUID,
        principal: Annotated[Principal, auditor],
        format: Format = Format.JSON,
    ) -> Any:
        """Every entry of one episode, in log order."""
        show_personal = _may_see_personal(principal)
        where = EntryFilter(episode_id=episode_id, counties=principal.county_filter())
        if format is not Format.JSON:
            return stream(where, 0, format, show_personal=show_personal)
        async with runtime.pool.acquire() as conn:
            rows = [
                present(row, show_personal=show_personal)
                async for chunk in postgres.stream_entries(conn, where=where)
                for row in chunk
            ]
        if not rows:
            raise HTTPException(404, f"no entries for episode {episode_id}")
        return {"episode_id": str(episode_id), "entries": rows}

    async def _size_or_latest(tree_size: int | None) -> tuple[int, int]:
        async with runtime.pool.acquire() as conn:
            current = await postgres.tree_size(conn)
            if tree_size is None:
                latest = await postgres.latest_checkpoint(conn)
                tree_size = latest.tree_size if latest else current
        if tree_size > current:
            raise _invalid("tree_size", f"the log has {current} entries")
        return tree_size, current

    @router.get("/proof/{seq}")
    async def inclusion_proof(
        seq: int,
        principal: Annotated[Principal, auditor],
        tree_size: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """RFC 6962 audit path of entry ``seq`` in the tree of ``tree_size`` entries
        (by default the newest checkpoint's)."""
        size, _ = await _size_or_latest(tree_size)
        if not 1 <= seq <= size:
            raise HTTPException(404, f"entry {seq} is not in a tree of size {size}")
        async with runtime.pool.acquire() as conn:
            entry = await postgres.leaf_at(conn, seq)
            assert entry is not None
            if not principal.sees(entry["county_code"]):
                raise HTTPException(404, f"entry {seq} is not in a tree of size {size}")
            path = await postgres.proof_hashes(
                conn, merkle.inclusion_ranges(seq - 1, size)
            )
            root = await postgres.root_hash(conn, size)
        return {
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_hash": _b64(entry["leaf_hash"]),
            "audit_path": [_b64(h) for h in path],
            "root_hash": _b64(root),
        }

    @router.get("/consistency", dependencies=[auditor])
    async def consistency_proof(
        from_: Annotated[int, Query(alias="from", ge=1)],
        to: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        """RFC 6962 proof that the tree of ``to`` entries extends that of ``from``."""
        if from_ > to:
            raise _invalid("from", "must not be greater than to")
        await _size_or_latest(to)
        async with runtime.pool.acquire() as conn:
            proof = await postgres.proof_hashes(
                conn, merkle.consistency_ranges(from_, to)
            )
            first = await postgres.root_hash(conn, from_)
            second = await postgres.root_hash(conn, to)
        return {
            "from": from_,
            "to": to,
            "from_root": _b64(first),
            "to_root": _b64(second),
            "proof": [_b64(h) for h in proof],
        }

    @router.get(
        "/bundle",
        responses={
            200: {
                "description": "The bundle (canonical JSON), for "
                "`mfc audit verify --bundle`",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            409: {"description": "No checkpoint is signed yet"},
        },
    )
    async def proof_bundle(
        principal: Annotated[Principal, auditor],
        county: str | None = None,
        from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        to: AwareDatetime | None = None,
    ) -> Response:
        """A proof bundle for the caller's counties (or ``county``) and a period of
        event times: each entry with its inclusion proof against the newest signed
        checkpoint, the checkpoints signed since with consistency proofs, the
        policy files, all sealed by the log's key. Entries appended after the newest
        checkpoint are not in it (sign one first: ``POST /v1/audit/checkpoints``).
        ``mfc audit verify --bundle`` checks it offline; personal fields are
        redacted unless the caller has ``auditor_pii`` (such entries are checked by
        their hash)."""
        where = EntryFilter(
            counties=principal.county_filter(county), time_from=from_, time_to=to
        )
        async with runtime.pool.acquire() as conn:
            try:
                body = await make_bundle(
                    conn,
                    keys=keys(),
                    now=runtime.clock.now(),
                    where=where,
                    show_personal=_may_see_personal(principal),
                )
            except NoCheckpointError as exc:
                raise HTTPException(
                    409, f"{exc}: sign one (POST /v1/audit/checkpoints) and ask again"
                ) from exc
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="audit-bundle.json"'},
        )

    @router.get("/checkpoints", dependencies=[auditor])
    async def list_checkpoints(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Signed checkpoints, newest first."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.checkpoints(conn)
        return {"checkpoints": [c.to_json() for c in reversed(rows)][:limit]}

    @router.post(
        "/checkpoints",
        status_code=201,
        dependencies=[Depends(runtime.auth.require())],  # admin only
    )
    async def sign_checkpoint() -> dict[str, Any]:
        """Sign the current tree head now."""
        signed = await checkpointer().issue(force=True)
        assert signed is not None
        return signed.to_json()

    @router.get(
        "/public-key",
        dependencies=[auditor],
        response_class=Response,
        responses={
            200: {
                "description": "PEM public key",
                "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
            }
        },
    )
    async def public_key() -> Response:
        """The PEM public key that checkpoints are signed with."""
        return Response(
            public_pem(keys().signing.public_key()), media_type="application/x-pem-file"
        )

    @router.get("/verify", dependencies=[auditor])
    async def verify() -> dict[str, Any]:
        """Recompute every leaf and root; check every checkpoint, in the database and
        outside it. ``ok`` is false and the first failing entry and checkpoint are
        named when anything does not match."""
        report = await verify_log(
            runtime.pool,
            keys=keys(),
            directory=directory,
            metrics=metrics,
            witness=checkpointer().witness,
        )
        return report.to_json()

    @router.get("/policies", dependencies=[auditor])
    async def list_policies() -> PolicyList:
        """Every policy file a notifier has decided deadlines by, oldest first (the
        files hold no county's data: every auditor sees them all)."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.policy_versions(conn)
        return PolicyList(
            policies=[PolicySummary.of(r) for r in rows],
        )

    @router.get("/policies/{digest}", dependencies=[auditor])
    async def policy_version(
        digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    ) -> PolicyVersion:
        """The policy file with this sha256, as obligations record it in
        ``policy_digest``: its whole content, when it took effect and its entry."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.policy_versions(conn, digest)
        if not rows:
            raise HTTPException(404, f"no policy with sha256 {digest} is in the trail")
        version = PolicyVersion.of(rows[0])
        if hashlib.sha256(version.content.encode()).hexdigest() != digest:
            # The append-only log refuses changes; a copy that does not hash is
            # tampering below the database's guard: say so, never serve it as true.
            raise HTTPException(
                409,
                "the trail's copy of this policy does not match its sha256: verify the log",
            )
        return version

    @router.get("/compliance", responses=EXPORTS)
    async def compliance_answer(
        principal: Annotated[Principal, auditor],
        county: str | None = None,
        from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        to: AwareDatetime | None = None,
        as_of: AwareDatetime | None = None,
        format: Format = Format.JSON,
        view: Literal["obligations", "crosscheck"] = "obligations",
        tree_size: Annotated[int | None, Query(ge=0)] = None,
    ) -> Any:
        """Per episode and in total: time from each clock start to the notice, met /
        late / missing, and the on-time share per obligation type and county, from
        the trail's obligation events (the notifier's view); and the cross-check, per
        episode and kind, against the duties the episode events and the policy of
        record ask for (the derived view), naming each difference. Filters select
        by clock start; ``as_of`` judges outcomes at that moment (default now), so a
        report can be reproduced, online or with ``mfc audit compliance`` from an
        export. ``view`` chooses the rows of CSV and JSON lines answers.
        ``tree_size`` reports from the log's first entries only: give a bundle's
        checkpoint size to get the bytes ``mfc audit compliance --offline`` gives."""
        now: datetime = as_of or runtime.clock.now()
        async with runtime.pool.acquire() as conn:
            result = await compliance_report(
                conn,
                now=now,
                counties=principal.county_filter(county),
                clock_from=from_,
                clock_to=to,
                up_to=tree_size,
            )
        if format is Format.JSON:
            return result
        rows = (
            result["crosscheck"]["rows"]
            if view == "crosscheck"
            else [o for e in result["episodes"] for o in e["obligations"]]
        )
        if format is Format.JSONL:
            body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            return Response(body, media_type="application/x-ndjson")
        return Response(compliance.csv_text(result, view), media_type="text/csv")

    return router
