"""Intake's county-facing HTTP API; decode, delegate to handlers, map errors."""

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from intake import handlers
from intake.adapters import postgres
from intake.domain.model import Episode, ReportRejectedError
from shared.events import EpisodeReportedData
from shared.runtime import ServiceRuntime


class EpisodeView(BaseModel):
    id: UUID
    county_code: str
    case_id: str
    status: str
    completeness: list[str]
    agency_learned_at: datetime
    created_at: datetime
    timeline: list[dict[str, Any]] | None = None

    @classmethod
    def of(
        cls, episode: Episode, timeline: list[dict[str, Any]] | None = None
    ) -> "EpisodeView":
        return cls(
            id=episode.id,
            county_code=episode.county_code,
            case_id=episode.case_id,
            status=episode.status,
            completeness=episode.completeness,
            agency_learned_at=episode.agency_learned_at,
            created_at=episode.created_at,
            timeline=timeline,
        )


def rejected_response(exc: ReportRejectedError) -> JSONResponse:
    # The same shape as FastAPI's own 422 answers, so clients parse one format.
    return JSONResponse(
        status_code=422,
        content={
            "detail": [
                {"loc": ["body", *p.loc], "msg": p.msg, "type": "value_error"}
                for p in exc.problems
            ]
        },
    )


def create_router(
    runtime: ServiceRuntime,
    ctx: handlers.IntakeContext,
    metrics: handlers.IntakeMetrics,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["episodes"])

    @router.post(
        "/episodes",
        status_code=201,
        response_model=EpisodeView,
        responses={
            200: {"description": "The same report again: the existing episode"},
            409: {"description": "The case already has a different open episode"},
            422: {"description": "Invalid report, naming each bad field"},
        },
    )
    async def report_episode(report: EpisodeReportedData, response: Response) -> Any:
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                outcome = await handlers.report_episode(
                    conn, report, ctx=ctx, metrics=metrics
                )
        except ReportRejectedError as exc:
            return rejected_response(exc)
        except handlers.EpisodeConflictError as exc:
            return JSONResponse(
                status_code=409,
                content={
                    "detail": str(exc),
                    "episode_id": str(exc.episode_id),
                    "episode_url": f"/v1/episodes/{exc.episode_id}",
                },
            )
        response.status_code = 201 if outcome.created else 200
        response.headers["Location"] = f"/v1/episodes/{outcome.episode.id}"
        return EpisodeView.of(outcome.episode)

    @router.get("/episodes/{episode_id}", response_model=EpisodeView)
    async def get_episode(episode_id: UUID) -> EpisodeView:
        async with runtime.pool.acquire() as conn:
            episode = await postgres.get_episode(conn, episode_id)
            if episode is None:
                raise HTTPException(status_code=404, detail="no such episode")
            return EpisodeView.of(episode, await postgres.timeline(conn, episode_id))

    return router
