"""The auditor API."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from audit.adapters import postgres
from shared.runtime import ServiceRuntime


class EntryPage(BaseModel):
    entries: list[dict[str, Any]]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; stable while new entries are appended."""


def create_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(prefix="/v1/audit", tags=["audit"])

    @router.get("/entries", response_model=EntryPage)
    async def list_entries(
        episode_id: UUID | None = None,
        county: str | None = None,
        type: str | None = None,
        from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        to: AwareDatetime | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> EntryPage:
        after = 0
        if cursor is not None:
            if not cursor.isdigit():
                raise HTTPException(
                    status_code=422,
                    detail=[
                        {
                            "loc": ["query", "cursor"],
                            "msg": "invalid cursor",
                            "type": "value_error",
                        }
                    ],
                )
            after = int(cursor)
        async with runtime.pool.acquire() as conn:
            rows = await postgres.entries(
                conn,
                after_seq=after,
                limit=limit,
                episode_id=episode_id,
                county=county.upper() if county else None,
                type_=type,
                time_from=from_,
                time_to=to,
            )
        next_cursor = str(rows[-1]["seq"]) if len(rows) == limit else None
        return EntryPage(entries=rows, next_cursor=next_cursor)

    return router
