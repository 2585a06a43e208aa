"""Auditors: the compliance dashboard and its CSV, an episode's trail with every
entry's proof checked here, the signed checkpoints and "verify the whole trail"."""

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.adapters.services import Api, NotFoundError
from console.domain import charts, proofs
from console.signin import User
from console.web import Console, form_of

AUDITORS = ("auditor", "auditor_pii")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COUNTY = re.compile(r"^[A-Za-z]{2}-\d{3}$")


def filters_of(request: Request) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(what the page shows in its form, what the audit API is asked, problems)."""
    shown = {
        k: request.query_params.get(k, "").strip() for k in ("county", "from", "to")
    }
    asked: dict[str, str] = {}
    problems = []
    if shown["county"]:
        if COUNTY.match(shown["county"]):
            asked["county"] = shown["county"].upper()
        else:
            problems.append("County: use the state and county code, like NC-063.")
    for name, words in (("from", "From"), ("to", "To")):
        if shown[name]:
            if DATE.match(shown[name]):
                asked[name] = f"{shown[name]}T00:00:00+00:00"
            else:
                problems.append(f"{words}: use a date like 2026-01-31.")
    return shown, asked, problems


def create_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/audit")

    async def auditor(request: Request) -> User:
        return await console.user_with(request, "the audit pages", *AUDITORS)

    @router.get("")
    async def dashboard(request: Request) -> Response:
        user = await auditor(request)
        shown, asked, problems = filters_of(request)
        report = await console.api(user).compliance(asked) if not problems else {}
        rows = charts.rows_of(report)
        return console.page(
            request,
            "audit_dashboard.html",
            user=user,
            filters=shown,
            query=request.url.query,
            problems=problems,
            report=report,
            groups=report.get("by_kind_and_county", []),
            total=report.get("total"),
            episodes=report.get("episodes", []),
            charts=[charts.on_time_by_month(rows), charts.time_to_notice(rows)],
        )

    @router.get("/compliance.csv")
    async def compliance_csv(request: Request) -> Response:
        """Exactly the audit service's CSV for the filters shown."""
        user = await auditor(request)
        _, asked, problems = filters_of(request)
        if problems:
            return console.problem(
                request,
                status_code=422,
                title="The filters are not right",
                what=" ".join(problems),
                next_step="Go back to the dashboard and correct them.",
                user=user,
            )
        text = await console.api(user).compliance_csv(asked)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Response(
            text,
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="compliance-{stamp}.csv"'
            },
        )

    @router.get("/episodes/{episode_id}")
    async def trail(request: Request, episode_id: str) -> Response:
        user = await auditor(request)
        api = console.api(user)
        pinned = console.settings.audit_public_key_file
        found, documents, key = await asyncio.gather(
            api.trail(episode_id),
            api.checkpoints(),
            asyncio.to_thread(pinned.read_bytes) if pinned else api.audit_public_key(),
        )
        checkpoint = proofs.trusted_checkpoint(documents, key)
        entries = found["entries"]
        checks = await _checks(api, entries, checkpoint)
        covered = [
            c for c in checks if c.seq <= (checkpoint.tree_size if checkpoint else 0)
        ]
        return console.page(
            request,
            "audit_trail.html",
            user=user,
            episode_id=episode_id,
            rows=list(zip(entries, checks, strict=True)),
            checkpoint=checkpoint,
            key_pinned=pinned is not None,
            all_verified=bool(covered) and all(c.verified for c in covered),
            pending=len(checks) - len(covered),
        )

    @router.get("/checkpoints")
    async def checkpoints(request: Request) -> Response:
        user = await auditor(request)
        documents = await console.api(user).checkpoints()
        return console.page(
            request, "audit_checkpoints.html", user=user, checkpoints=documents
        )

    @router.post("/verify")
    async def verify(request: Request) -> Response:
        user = await auditor(request)
        await form_of(request, console.sessions)
        api = console.api(user)
        result = await api.verify_trail()
        documents = await api.checkpoints()
        return console.page(
            request,
            "audit_checkpoints.html",
            user=user,
            checkpoints=documents,
            result=result,
        )

    return router


async def _checks(
    api: Api, entries: list[dict[str, Any]], checkpoint: Any
) -> list[proofs.ProofCheck]:
    limit = asyncio.Semaphore(8)

    async def one(entry: dict[str, Any]) -> proofs.ProofCheck:
        proof = None
        if checkpoint is not None and int(entry["seq"]) <= checkpoint.tree_size:
            async with limit:
                try:
                    proof = await api.proof(int(entry["seq"]), checkpoint.tree_size)
                except NotFoundError:
                    proof = None
        return proofs.check(entry, proof, checkpoint)

    return list(await asyncio.gather(*(one(e) for e in entries)))
