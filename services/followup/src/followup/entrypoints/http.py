"""Followup's HTTP API: list prompts, complete one."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from followup import handlers
from followup.domain.model import Prompt, PromptStatus
from followup.ports import PortFactory
from shared.apidoc import Problem
from shared.auth import Principal, Role
from shared.runtime import ServiceRuntime


class CompleteRequest(BaseModel):
    note: Annotated[str, StringConstraints(max_length=4000)] | None = None
    completed_by: SkipJsonSchema[Any] = None
    """Refused: who completed it is the caller's sign-in (the token's subject)."""

    @field_validator("completed_by", mode="before")
    @classmethod
    def _not_from_the_body(cls, _value: Any) -> None:
        raise PydanticCustomError(
            "set_from_token", "set from your sign-in; do not send it"
        )


class PromptView(BaseModel):
    id: UUID
    episode_id: UUID
    rule_id: str
    title: str
    assignee: str
    occurrence: int
    issued_at: datetime
    due_at: datetime
    status: str
    overdue: bool
    completed_at: datetime | None
    completed_by: str | None
    note: str | None
    ended_reason: str | None
    missing_items: list[str] | None = None
    """For a prompt to provide report items: those missing when it was issued."""

    @classmethod
    def of(cls, prompt: Prompt) -> "PromptView":
        return cls(
            **{k: getattr(prompt, k) for k in cls.model_fields if k != "overdue"},
            overdue=prompt.overdue_at is not None,
        )


def create_router(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["prompts"])
    caseworker = Depends(runtime.auth.require(Role.CASEWORKER))
    staff = Depends(runtime.auth.require(Role.CASEWORKER, Role.ONCALL))

    @router.post(
        "/prompts/{prompt_id}/complete",
        response_model=PromptView,
        responses={
            409: {
                "model": Problem,
                "description": "The prompt is not open (completed or ended already)",
            }
        },
    )
    async def complete(
        prompt_id: UUID,
        principal: Annotated[Principal, caseworker],
        body: CompleteRequest | None = None,
    ) -> PromptView:
        """Complete this occurrence as the caller (the token's subject); a recurring
        prompt's next one comes on schedule."""
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                done = await handlers.complete_prompt(
                    port_of(conn),
                    prompt_id,
                    completed_by=principal.subject,
                    note=body.note if body else None,
                    deps=deps,
                    in_scope=principal.sees,
                )
        except handlers.PromptNotFoundError:
            raise HTTPException(status_code=404, detail="no such prompt") from None
        except handlers.PromptNotOpenError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return PromptView.of(done)

    @router.get("/prompts", response_model=list[PromptView])
    async def list_prompts(
        principal: Annotated[Principal, staff],
        episode_id: UUID | None = None,
        status: Literal["open", "completed", "ended", "overdue"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[PromptView]:
        """Prompts by episode and status (``overdue``: open and past due)."""
        wanted = "open" if status == "overdue" else status
        async with runtime.pool.acquire() as conn:
            found = await port_of(conn).find_prompts(
                episode_id=episode_id,
                status=PromptStatus(wanted) if wanted else None,
                overdue=status == "overdue",
                limit=limit,
                counties=principal.county_filter(),
            )
        return [PromptView.of(p) for p in found]

    return router
