"""Intake's projection of obligations and prompts on real PostgreSQL: a batch is
applied in order, new rows go in together, and an event it cannot read is refused
(the consumer dead-letters it) without a row of the batch landing."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from intake import deadlines
from shared.consumer import RawMessage
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent, InvalidEventError
from shared.published import ObligationEvent, PromptEvent
from tests.counting import Counting

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def event(type_: str, data: dict, at: datetime = AT) -> tuple[CloudEvent, RawMessage]:
    message = RawMessage("mfc.obligations.v1", 0, 0, None, b"")
    made = CloudEvent.new(
        type=type_,
        source="service/notifier",
        subject=data["episode_id"],
        data=data,
        time=at,
    )
    return made, message


def opened(episode_id, obligation_id, kind: str, due: datetime) -> dict:
    return {
        "obligation_id": str(obligation_id),
        "episode_id": str(episode_id),
        "kind": kind,
        "title": kind.replace("_", " "),
        "clock_start": AT.isoformat(),
        "due_at": due.isoformat(),
    }


def issued(episode_id, prompt_id, due: datetime) -> dict:
    return {
        "prompt_id": str(prompt_id),
        "episode_id": str(episode_id),
        "kind": "weekly_contact",
        "title": "Weekly contact",
        "occurrence": 0,
        "issued_at": AT.isoformat(),
        "due_at": due.isoformat(),
    }


@pytest.fixture
async def pool(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique)
    await apply_migrations(pool, service_migrations("intake"))
    try:
        yield pool
    finally:
        await pool.close()


async def project(pool, batch) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await deadlines.project(conn, batch)


async def test_a_batch_is_projected_in_order(pool):
    episode, police, ncmec, prompt = uuid4(), uuid4(), uuid4(), uuid4()
    await project(
        pool,
        [
            event(ObligationEvent.OPENED, opened(episode, police, "police", AT + H)),
            event(ObligationEvent.OPENED, opened(episode, ncmec, "ncmec", AT + 2 * H)),
            # a change right after its row was opened in the same batch
            event(
                ObligationEvent.BREACHED,
                {"obligation_id": str(police), "episode_id": str(episode)},
                AT + H,
            ),
            event(PromptEvent.ISSUED, issued(episode, prompt, AT + 3 * H)),
            event(
                ObligationEvent.SATISFIED,
                {
                    "obligation_id": str(ncmec),
                    "episode_id": str(episode),
                    "satisfied_at": (AT + H).isoformat(),
                },
                AT + H,
            ),
        ],
    )
    # the same opening again (a replay) changes nothing; a type it does not
    # follow is passed over
    await project(
        pool,
        [
            event(ObligationEvent.OPENED, opened(episode, police, "police", AT)),
            event("x", {"episode_id": str(episode)}),
        ],
    )

    async with pool.acquire() as conn:
        obligations = await deadlines.obligations_of(conn, episode)
        prompts = await deadlines.prompts_of(conn, episode)
    assert [(o.obligation_id, o.status, o.due_at) for o in obligations] == [
        (police, "open", AT + H),
        (ncmec, "satisfied", AT + 2 * H),
    ]
    assert obligations[0].breached
    assert not obligations[1].breached
    assert obligations[1].satisfied_at == AT + H
    assert [(p.prompt_id, p.kind, p.status) for p in prompts] == [
        (prompt, "weekly_contact", "open")
    ]


async def test_breaches_and_overdues_in_a_row_are_written_together(pool):
    episode, ids = uuid4(), [uuid4() for _ in range(3)]
    prompt = uuid4()

    def breached(i, at):
        data = {"obligation_id": str(ids[i]), "episode_id": str(episode)}
        return event(ObligationEvent.BREACHED, data, at)

    batch = [
        *(
            event(ObligationEvent.OPENED, opened(episode, o, f"k{n}", AT))
            for n, o in enumerate(ids)
        ),
        event(PromptEvent.ISSUED, issued(episode, prompt, AT + H)),
        breached(0, AT + H),
        breached(1, AT + H),
        event(
            PromptEvent.OVERDUE,
            {"prompt_id": str(prompt), "episode_id": str(episode)},
            AT + H,
        ),
        breached(0, AT + 3 * H),  # breached again later: its later time counts
        event(
            ObligationEvent.SATISFIED,
            {
                "obligation_id": str(ids[1]),
                "episode_id": str(episode),
                "satisfied_at": (AT + 2 * H).isoformat(),
            },
            AT + 2 * H,
        ),
    ]
    async with pool.acquire() as conn, conn.transaction():
        counting = Counting(conn)
        await deadlines.project(counting, batch)  # type: ignore[arg-type]

    # the openings, the issue, the two kinds of flag, the satisfaction (was 7)
    assert len(counting.statements) == 5
    rows = {
        r["obligation_id"]: r
        for r in await pool.fetch("SELECT * FROM episode_obligations")
    }
    assert [rows[o]["breached"] for o in ids] == [True, True, False]
    assert rows[ids[0]]["updated_at"] == AT + 3 * H
    assert (rows[ids[1]]["status"], rows[ids[1]]["updated_at"]) == (
        "satisfied",
        AT + 2 * H,
    )
    assert await pool.fetchval("SELECT overdue FROM episode_prompts") is True


async def test_an_unreadable_event_refuses_the_batch_and_names_its_type(pool):
    episode = uuid4()
    good = opened(episode, uuid4(), "police", AT + H)
    bad = {**opened(episode, uuid4(), "ncmec", AT + H), "due_at": "tomorrow"}

    with pytest.raises(InvalidEventError, match=r"mfc\.obligation\.opened"):
        await project(
            pool,
            [event(ObligationEvent.OPENED, good), event(ObligationEvent.OPENED, bad)],
        )

    async with pool.acquire() as conn:
        assert await deadlines.obligations_of(conn, episode) == []
