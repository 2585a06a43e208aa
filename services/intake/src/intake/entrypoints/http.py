"""Intake's county-facing HTTP API: decode, delegate to handlers, map errors."""

from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from intake import deadlines, handlers
from intake.adapters import postgres
from intake.deadlines import ObligationSummary, PromptSummary
from intake.domain.lifecycle import EventInvalidError, EventRefusedError
from intake.domain.model import (
    Episode,
    EpisodeStatus,
    FieldProblem,
    ReportRejectedError,
)
from intake.feeds import FeedWatch
from shared.auth import Principal, Role
from shared.db import Conn
from shared.events import (
    EpisodeClosedData,
    EpisodeLocatedData,
    EpisodeReportedData,
    EpisodeUpdatedData,
    EventType,
    FeedHeartbeatData,
    Identifier,
    NotificationFields,
    NotificationRecordedData,
    ScreeningCompletedData,
    unknown_field_message,
)
from shared.runtime import InvalidRequestHook, ServiceRuntime

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry-safe key chosen by the client"),
    StringConstraints(min_length=1, max_length=200),
]


class TimelineEntry(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class EpisodeView(BaseModel):
    id: UUID
    county_code: str
    case_id: str
    status: EpisodeStatus
    completeness: list[str]
    """Report items still missing (photo, physical description, endangerments)."""
    agency_learned_at: datetime
    created_at: datetime
    updated_at: datetime
    located_at: datetime | None
    screened_at: datetime | None
    closed_at: datetime | None
    obligations: list[ObligationSummary] | None = None
    """Legal notices and their due times. Answering a report: computed from the
    policy; otherwise: as the notifier opened them, with their state."""
    prompts: list[PromptSummary] | None = None
    """Followup prompts as the followup service issued them."""
    timeline: list[TimelineEntry] | None = None

    @classmethod
    def of(
        cls,
        episode: Episode,
        timeline: list[dict[str, Any]] | None = None,
        *,
        obligations: list[ObligationSummary] | None = None,
        prompts: list[PromptSummary] | None = None,
    ) -> "EpisodeView":
        return cls(
            id=episode.id,
            county_code=episode.county_code,
            case_id=episode.case_id,
            status=episode.status,
            completeness=episode.completeness,
            agency_learned_at=episode.agency_learned_at,
            created_at=episode.created_at,
            updated_at=episode.updated_at,
            located_at=episode.located_at,
            screened_at=episode.screened_at,
            closed_at=episode.closed_at,
            obligations=obligations,
            prompts=prompts,
            timeline=[TimelineEntry.model_validate(t) for t in timeline]
            if timeline is not None
            else None,
        )


class NotificationRequest(NotificationFields):
    """A notice given, as the HTTP API takes it. A county system names the staff
    member who gave it; a person signed in (caseworker, on-call) records a notice they
    gave themselves: ``notified_by`` is then their sign-in, and may be left out."""

    notified_by: Annotated[
        Identifier | None,
        Field(
            description="Who gave the notice: required from a county system; for a "
            "person, their sign-in (leave it out, or send your own)"
        ),
    ] = None


class EpisodePage(BaseModel):
    episodes: list[EpisodeView]
    next_cursor: str | None


def problems_response(problems: list[FieldProblem]) -> JSONResponse:
    # The same shape as FastAPI's own 422 answers, so clients parse one format.
    return JSONResponse(
        status_code=422,
        content={
            "detail": [
                {"loc": ["body", *p.loc], "msg": p.msg, "type": "value_error"}
                for p in problems
            ]
        },
    )


BODY_MODELS: dict[str, type[BaseModel]] = {
    "report_episode": EpisodeReportedData,
    "record_updates": EpisodeUpdatedData,
    "record_notifications": NotificationRequest,
    "record_located": EpisodeLocatedData,
    "record_screening": ScreeningCompletedData,
    "record_close": EpisodeClosedData,
    "heartbeat": FeedHeartbeatData,
}
"""The body model of each route that takes one, by route name."""


def refine_invalid(
    ctx: handlers.IntakeContext, metrics: handlers.IntakeMetrics
) -> InvalidRequestHook:
    """Complete a schema refusal with the deployment's rules and count it.

    Without this, a client would fix its schema errors only to learn of a future
    time or an unserved county in a second round trip.
    """

    def refine(
        request: Request, body: Any, detail: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        model = BODY_MODELS.get(getattr(request.scope.get("route"), "name", ""))
        if model is None:
            return detail
        for entry in detail:
            if entry["type"] == "extra_forbidden" and entry["loc"][:1] == ["body"]:
                entry["msg"] = unknown_field_message(model, entry["loc"][1:])
        seen = {(tuple(p["loc"]), p["msg"]) for p in detail}
        for problem in ctx.rule_problems(model, body):
            loc = ("body", *problem.loc)
            if (loc, problem.msg) not in seen:
                detail.append(
                    {"loc": list(loc), "msg": problem.msg, "type": "value_error"}
                )
        for entry in detail:
            metrics.rejected.labels(_reason(model, entry["loc"])).inc()
        return detail

    return refine


def _reason(model: type[BaseModel], loc: list[Any]) -> str:
    """A metric label for a refused field: bounded, so never a name the client made up."""
    if len(loc) > 1 and loc[0] == "body" and loc[1] in model.model_fields:
        return str(loc[1])
    if len(loc) > 1 and loc[0] in ("path", "header"):
        return str(loc[1]).lower()
    return "body"


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "The token lacks the role, or the report's county"},
    404: {"description": "No such episode (or not in the caller's counties)"},
    409: {"description": "The event does not fit the episode (e.g. closed)"},
    422: {"description": "Invalid, naming each bad field"},
}


async def _projected(
    conn: Conn,
    outcome: handlers.Outcome,
    expected: Callable[[], list[ObligationSummary]] | None,
) -> tuple[list[ObligationSummary], list[PromptSummary]]:
    """The obligations and prompts to show with an episode. The deadline projection
    learns of a report only after it commits, so until then a report's answer shows
    the obligations its policy demands (``expected``) and no prompts."""
    if expected is not None and outcome.created:
        return expected(), []  # a new episode: nothing can be projected for it yet
    obligations = await deadlines.obligations_of(conn, outcome.episode.id)
    if not obligations and expected is not None:
        obligations = expected()
    return obligations, await deadlines.prompts_of(conn, outcome.episode.id)


def create_router(
    runtime: ServiceRuntime,
    ctx: handlers.IntakeContext,
    metrics: handlers.IntakeMetrics,
    feeds: FeedWatch,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["episodes"])
    sender = Depends(runtime.auth.require(Role.COUNTY_SYSTEM))
    notifier = Depends(
        runtime.auth.require(Role.COUNTY_SYSTEM, Role.CASEWORKER, Role.ONCALL)
    )
    reader = Depends(
        runtime.auth.require(Role.CASEWORKER, Role.ONCALL, Role.COUNTY_SYSTEM)
    )

    async def run(
        response: Response,
        principal: Principal,
        command: Callable[[Conn], Awaitable[handlers.Outcome]],
        expected: Callable[[], list[ObligationSummary]] | None = None,
        *,
        transaction: bool = True,
    ) -> Any:
        """``transaction``: run ``command`` in one (False: it keeps its own guarantees,
        as a report does with one statement, and saves BEGIN and COMMIT)."""
        try:
            async with (
                runtime.pool.acquire() as conn,
                conn.transaction() if transaction else nullcontext(),
            ):
                outcome = await command(conn)
                obligations, prompts = await _projected(conn, outcome, expected)
            if Role.COUNTY_SYSTEM in principal.roles:
                # The county's system is alive; a person recording a notice by
                # hand (a silent feed's runbook asks for that) says nothing of it.
                feeds.heard(outcome.episode.county_code, "http")
        except (ReportRejectedError, EventInvalidError) as exc:
            return problems_response(exc.problems)
        except handlers.IdempotencyKeyReusedError as exc:
            return _error(422, str(exc))
        except handlers.EpisodeConflictError as exc:
            return _error(
                409,
                str(exc),
                episode_id=str(exc.episode_id),
                episode_url=f"/v1/episodes/{exc.episode_id}",
            )
        except handlers.EpisodeNotFoundError as exc:
            return _error(404, str(exc))
        except EventRefusedError as exc:
            return _error(409, str(exc))
        response.status_code = 201 if outcome.created else 200
        response.headers["Location"] = f"/v1/episodes/{outcome.episode.id}"
        return EpisodeView.of(outcome.episode, obligations=obligations, prompts=prompts)

    @router.post(
        "/episodes",
        status_code=201,
        response_model=EpisodeView,
        responses={
            200: {"description": "The same report again: the same episode"},
            **ERROR_RESPONSES,
        },
    )
    async def report_episode(
        report: EpisodeReportedData,
        response: Response,
        principal: Annotated[Principal, sender],
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Report a child missing from care; opens an episode."""
        if not principal.sees(report.county_code):
            return _error(403, f"not allowed to report for county {report.county_code}")
        return await run(
            response,
            principal,
            lambda conn: handlers.report_episode(
                conn, report, ctx=ctx, metrics=metrics, idempotency_key=idempotency_key
            ),
            lambda: deadlines.expected_obligations(ctx.policy, report),
            transaction=False,
        )

    def notice(body: NotificationRequest, principal: Principal) -> BaseModel:
        """The notice to record: who gave it is the caller's sign-in for a person,
        and named in the body by a county system (or an admin)."""
        try:
            return notice_of(body, principal)
        except EventInvalidError:
            metrics.rejected.labels("notified_by").inc()
            raise

    def later_event(
        path: str,
        event_type: str,
        model: type[BaseModel],
        summary: str,
        *,
        description: str | None = None,
        caller: Any = sender,
        prepare: Callable[[Any, Principal], BaseModel] | None = None,
    ) -> None:
        async def record(
            episode_id: UUID,
            body: Any,
            response: Response,
            principal: Annotated[Principal, caller],
            idempotency_key: IdempotencyKey = None,
        ) -> Any:
            async def command(conn: Conn) -> handlers.Outcome:
                data = body if prepare is None else prepare(body, principal)
                await _in_scope(conn, episode_id, principal)
                return await handlers.record_event(
                    conn,
                    episode_id,
                    event_type,
                    data,
                    ctx=ctx,
                    metrics=metrics,
                    idempotency_key=idempotency_key,
                )

            return await run(response, principal, command)

        record.__annotations__["body"] = model
        router.add_api_route(
            f"/episodes/{{episode_id}}/{path}",
            record,
            methods=["POST"],
            status_code=201,
            response_model=EpisodeView,
            responses={
                200: {"description": "The same event again: nothing duplicated"},
                **ERROR_RESPONSES,
            },
            summary=summary,
            description=description,
            name=f"record_{path}",
        )

    later_event(
        "updates", EventType.EPISODE_UPDATED, EpisodeUpdatedData, "New information"
    )
    later_event(
        "notifications",
        EventType.NOTIFICATION_RECORDED,
        NotificationRequest,
        "A notice was given (law enforcement, NCMEC, ...)",
        description="A county system names who gave the notice (`notified_by`). A "
        "caseworker or on-call person records a notice they gave themselves: "
        "`notified_by` is then their sign-in (the token's subject), may be left "
        "out, and any other value is refused (422).",
        caller=notifier,
        prepare=notice,
    )
    later_event(
        "located", EventType.EPISODE_LOCATED, EpisodeLocatedData, "Child located"
    )
    later_event(
        "screening",
        EventType.SCREENING_COMPLETED,
        ScreeningCompletedData,
        "Post-return trafficking screening done",
    )
    later_event(
        "close", EventType.EPISODE_CLOSED, EpisodeClosedData, "Supervisor closes"
    )

    @router.post(
        "/heartbeats",
        status_code=204,
        tags=["feeds"],
        responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 422)},
    )
    async def heartbeat(
        body: FeedHeartbeatData, principal: Annotated[Principal, sender]
    ) -> Response:
        """A county system is alive and has nothing to report: its feed does not
        count as silent (INTAKE_FEED_SILENCE_AFTER). Any accepted report or later
        event counts the same; send a heartbeat only when there is nothing else."""
        if not principal.sees(body.county_code):
            return _error(403, f"not allowed to send for county {body.county_code}")
        if body.county_code not in ctx.served_counties:
            return problems_response(
                [
                    FieldProblem(
                        ("county_code",),
                        f"county {body.county_code} is not served by this deployment",
                    )
                ]
            )
        feeds.heard(body.county_code, "http")
        return Response(status_code=204)

    @router.get("/episodes/{episode_id}", response_model=EpisodeView)
    async def get_episode(
        episode_id: UUID, principal: Annotated[Principal, reader]
    ) -> EpisodeView:
        """The episode with its timeline, obligations and prompts."""
        async with runtime.pool.acquire() as conn:
            episode = await postgres.get_episode(conn, episode_id)
            if episode is None or not principal.sees(episode.county_code):
                raise HTTPException(status_code=404, detail="no such episode")
            return EpisodeView.of(
                episode,
                await postgres.timeline(conn, episode_id),
                obligations=await deadlines.obligations_of(conn, episode_id),
                prompts=await deadlines.prompts_of(conn, episode_id),
            )

    @router.get("/episodes", response_model=EpisodePage)
    async def list_episodes(
        principal: Annotated[Principal, reader],
        county: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}-\d{3}$")] = None,
        status: EpisodeStatus | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> EpisodePage:
        """Episodes in creation order, filtered, a page at a time; only those of the
        caller's counties."""
        after = _parse_cursor(cursor) if cursor else None
        counties = principal.county_filter(county)
        if counties == []:
            return EpisodePage(episodes=[], next_cursor=None)
        async with runtime.pool.acquire() as conn:
            episodes = await postgres.list_episodes(
                conn,
                counties=counties,
                status=status.value if status else None,
                after=after,
                limit=limit,
            )
        next_cursor = (
            f"{episodes[-1].created_at.isoformat()}|{episodes[-1].id}"
            if len(episodes) == limit
            else None
        )
        return EpisodePage(
            episodes=[EpisodeView.of(e) for e in episodes], next_cursor=next_cursor
        )

    return router


SET_FROM_SIGN_IN = "set from your sign-in; leave it out or send your own"


def notice_of(
    body: NotificationRequest, principal: Principal
) -> NotificationRecordedData:
    """The notice as it is recorded. County systems (and admins) record notices
    their staff gave and must name who gave it; a person (caseworker, on-call)
    records a notice they gave themselves, so ``notified_by`` is their sign-in (the
    token's subject) and another name is refused.

    Raises:
        EventInvalidError: ``notified_by`` missing, or not the caller's own.
    """
    speaks_for_staff = bool({Role.COUNTY_SYSTEM, Role.ADMIN} & principal.roles)
    if speaks_for_staff:
        if body.notified_by is None:
            raise EventInvalidError([FieldProblem(("notified_by",), "Field required")])
        by = body.notified_by
    elif body.notified_by in (None, principal.subject):
        by = principal.subject
    else:
        raise EventInvalidError([FieldProblem(("notified_by",), SET_FROM_SIGN_IN)])
    try:
        return NotificationRecordedData(
            **body.model_dump(exclude={"notified_by"}), notified_by=by
        )
    except ValidationError:  # a subject no notice can carry (e.g. too long)
        raise EventInvalidError(
            [FieldProblem(("notified_by",), "your sign-in's subject is not a valid id")]
        ) from None


async def _in_scope(conn: Conn, episode_id: UUID, principal: Principal) -> None:
    """Another county's episode is answered as no episode at all: ids cannot be
    probed."""
    episode = await postgres.get_episode(conn, episode_id)
    if episode is not None and not principal.sees(episode.county_code):
        raise handlers.EpisodeNotFoundError(f"no episode {episode_id}")


def _parse_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, episode_id = cursor.split("|", 1)
        return datetime.fromisoformat(created), UUID(episode_id)
    except ValueError:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["query", "cursor"],
                    "msg": "invalid cursor",
                    "type": "value_error",
                }
            ],
        ) from None
