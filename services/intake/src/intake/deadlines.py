"""The deadlines of an episode as intake shows them: what the policy asks for when a
report comes in, and what the notifier and the followup service have since reported
on ``mfc.obligations.v1`` and ``mfc.prompts.v1`` (a projection; they own the state).

The answer to a report lists the obligations computed from the same policy file the
notifier uses, so the caller sees its deadlines at once; ``GET /v1/episodes/{id}``
lists what the notifier actually opened, with their state.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from rules import EpisodeFacts, obligations_to_open, report_clock_times
from shared.consumer import RawMessage
from shared.db import Conn, columns
from shared.events import CloudEvent, EpisodeReportedData, InvalidEventError
from shared.logs import log_context
from shared.policy import Policy, Trigger
from shared.published import ObligationEvent, PromptEvent


class ObligationSummary(BaseModel):
    obligation_id: UUID | None
    """None in the answer to a report: computed from the policy, not opened yet."""
    kind: str
    title: str
    status: str
    """open, satisfied or moot."""
    clock_start: datetime
    due_at: datetime
    breached: bool = False
    waiting_reason: str | None = None
    satisfied_at: datetime | None = None
    closed_reason: str | None = None


class PromptSummary(BaseModel):
    prompt_id: UUID
    kind: str
    title: str
    occurrence: int
    status: str
    """open, completed or ended."""
    overdue: bool
    issued_at: datetime
    due_at: datetime
    completed_at: datetime | None


def expected_obligations(
    policy: Policy, report: EpisodeReportedData
) -> list[ObligationSummary]:
    """The obligations the policy opens for this report, with their due times."""
    drafts = obligations_to_open(
        policy.obligations_for(report.county_code),
        Trigger.REPORTED,
        EpisodeFacts.of(report),
        report_clock_times(report),
        calendars=policy.document.calendars,
    )
    return [
        ObligationSummary(
            obligation_id=None,
            kind=d.rule.id,
            title=d.rule.title,
            status="open",
            clock_start=d.clock_start,
            due_at=d.due_at,
        )
        for d in sorted(drafts, key=lambda d: (d.due_at, d.rule.id))
    ]


async def obligations_of(conn: Conn, episode_id: UUID) -> list[ObligationSummary]:
    rows = await conn.fetch(
        "SELECT * FROM episode_obligations WHERE episode_id = $1 ORDER BY due_at, kind",
        episode_id,
    )
    return [ObligationSummary.model_validate(dict(r)) for r in rows]


async def prompts_of(conn: Conn, episode_id: UUID) -> list[PromptSummary]:
    rows = await conn.fetch(
        "SELECT * FROM episode_prompts WHERE episode_id = $1 "
        "ORDER BY issued_at, kind, occurrence",
        episode_id,
    )
    return [PromptSummary.model_validate(dict(r)) for r in rows]


async def project(conn: Conn, batch: list[tuple[CloudEvent, RawMessage]]) -> None:
    """Apply a batch of obligation and prompt events to the projection, in order.
    Events of an episode arrive in order (keyed by episode); other types are
    ignored. New obligations and prompts, and the flags a breach or an overdue
    raises, gathered until another change comes, are written in one statement each
    (rows before flags: a flag's row came before it); a change is applied after
    everything that came before it."""
    opened: list[tuple[Any, ...]] = []
    issued: list[tuple[Any, ...]] = []
    flagged: dict[str, dict[UUID, datetime | None]] = {}
    for event, _ in batch:
        with log_context(event_id=event.id, episode_id=event.subject), _readable(event):
            if event.type == ObligationEvent.OPENED:
                opened.append(_opened_row(event.data, event.time))
            elif event.type == PromptEvent.ISSUED:
                issued.append(_issued_row(event.data, event.time))
            elif (flag := _FLAGS.get(event.type)) is not None:
                # The latest time of a row flagged twice wins, as one by one.
                key = UUID(event.data[flag.key])
                flagged.setdefault(event.type, {}).pop(key, None)
                flagged[event.type][key] = event.time
            else:
                await _write(conn, opened, issued, flagged)
                await _apply_change(conn, event)
    await _write(conn, opened, issued, flagged)


@dataclass(frozen=True)
class _Flag:
    table: str
    key: str
    column: str


_FLAGS: dict[str, _Flag] = {
    ObligationEvent.BREACHED: _Flag("episode_obligations", "obligation_id", "breached"),
    PromptEvent.OVERDUE: _Flag("episode_prompts", "prompt_id", "overdue"),
}


async def _write(
    conn: Conn,
    opened: list[tuple[Any, ...]],
    issued: list[tuple[Any, ...]],
    flagged: dict[str, dict[UUID, datetime | None]],
) -> None:
    """Write what was gathered, and forget it."""
    await _insert(conn, _INSERT_OBLIGATIONS, opened)
    await _insert(conn, _INSERT_PROMPTS, issued)
    for event_type, times in flagged.items():
        flag = _FLAGS[event_type]
        await conn.execute(
            f"UPDATE {flag.table} SET updated_at = coalesce(u.at, now()), "
            f"{flag.column} = true FROM unnest($1::uuid[], $2::timestamptz[]) "
            f"AS u(k, at) WHERE {flag.key} = u.k",
            list(times),
            list(times.values()),
        )
    flagged.clear()


@contextmanager
def _readable(event: CloudEvent) -> Iterator[None]:
    try:
        yield
    except (KeyError, ValueError, TypeError) as exc:
        # A field missing or of the wrong form: no retry can mend it, so it goes
        # to the dead-letter topic at once instead of holding up its partition.
        raise InvalidEventError(
            f"{event.type} does not carry what the projection needs "
            f"({type(exc).__name__}: {exc})"
        ) from exc


async def _insert(conn: Conn, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert the rows gathered so far in one statement, and forget them."""
    if rows:
        await conn.execute(statement, *columns(rows))
        rows.clear()


_INSERT_OBLIGATIONS = """
INSERT INTO episode_obligations (obligation_id, episode_id, kind, title, status,
    clock_start, due_at, updated_at)
SELECT i, e, k, t, 'open', c, d, coalesce(a, now())
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
    $6::timestamptz[], $7::timestamptz[]) AS u(i, e, k, t, c, d, a)
ON CONFLICT (obligation_id) DO NOTHING
"""

_INSERT_PROMPTS = """
INSERT INTO episode_prompts (prompt_id, episode_id, kind, title, occurrence, status,
    issued_at, due_at, updated_at)
SELECT i, e, k, t, o, 'open', s, d, coalesce(a, now())
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::integer[],
    $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
    AS u(i, e, k, t, o, s, d, a)
ON CONFLICT (prompt_id) DO NOTHING
"""


def _opened_row(data: dict[str, Any], at: datetime | None) -> tuple[Any, ...]:
    return (
        UUID(data["obligation_id"]),
        UUID(data["episode_id"]),
        data["kind"],
        data["title"],
        datetime.fromisoformat(data["clock_start"]),
        datetime.fromisoformat(data["due_at"]),
        at,
    )


def _issued_row(data: dict[str, Any], at: datetime | None) -> tuple[Any, ...]:
    return (
        UUID(data["prompt_id"]),
        UUID(data["episode_id"]),
        data["kind"],
        data["title"],
        data["occurrence"],
        datetime.fromisoformat(data["issued_at"]),
        datetime.fromisoformat(data["due_at"]),
        at,
    )


async def _apply_change(conn: Conn, event: CloudEvent) -> None:
    """A change to an obligation or a prompt already projected."""
    change, data, at = event.type.rpartition(".")[2], event.data, event.time
    if event.type.startswith("mfc.obligation."):
        await _change_obligation(conn, change, data, at)
    elif event.type.startswith("mfc.prompt."):
        await _change_prompt(conn, change, data, at)


async def _change_obligation(
    conn: Conn, change: str, data: dict[str, Any], at: datetime | None
) -> None:
    obligation_id = UUID(data["obligation_id"])
    if change == "waiting":
        await _set(
            conn,
            _OBLIGATIONS,
            obligation_id,
            at,
            waiting_reason=data.get("reason"),
        )
    elif change == "satisfied":
        await _set(
            conn,
            _OBLIGATIONS,
            obligation_id,
            at,
            status="satisfied",
            waiting_reason=None,
            satisfied_at=datetime.fromisoformat(data["satisfied_at"]),
        )
    elif change == "moot":
        await _set(
            conn,
            _OBLIGATIONS,
            obligation_id,
            at,
            status="moot",
            closed_reason=data.get("reason"),
        )


async def _change_prompt(
    conn: Conn, change: str, data: dict[str, Any], at: datetime | None
) -> None:
    prompt_id = UUID(data["prompt_id"])
    if change == "completed":
        await _set(
            conn,
            _PROMPTS,
            prompt_id,
            at,
            status="completed",
            completed_at=datetime.fromisoformat(data["completed_at"]),
        )
    elif change == "ended":
        await _set(conn, _PROMPTS, prompt_id, at, status="ended")


_OBLIGATIONS = ("episode_obligations", "obligation_id")
_PROMPTS = ("episode_prompts", "prompt_id")
"""A projection table and its key column."""


async def _set(
    conn: Conn,
    where: tuple[str, str],
    key: UUID,
    at: datetime | None,
    **values: Any,
) -> None:
    table, id_column = where
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=3))
    await conn.execute(
        f"UPDATE {table} SET updated_at = coalesce($2, now()), {assignments} "
        f"WHERE {id_column} = $1",
        key,
        at,
        *values.values(),
    )
