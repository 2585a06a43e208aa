"""The notifier's handlers and durable timers on real PostgreSQL with a clock the
test moves: what an ack quiets, which policy an open obligation keeps, whom a
schedule names when a step fires, and what closing an episode does."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from notifier import handlers
from notifier.adapters import postgres
from notifier.adapters.postgres import PostgresNotifier
from notifier.domain.obligations import to_open
from notifier.watchdog import Watchdog
from shared.alerting import AlertingContext
from shared.alerts import Route
from shared.clock import ManualClock
from shared.consumer import RawMessage, on_port
from shared.db import Conn, apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent, EventType
from shared.policy import Trigger, default_policy_path, load_policy
from shared.timers import TimerScheduler
from tests.conftest import make_report
from tests.counting import Counting
from tests.receivers import webhook_receiver

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)

POLICY = """
version = "{version}"

[defaults]
reminders = ["30m"]
snooze = "{snooze}"
breach_repeat = "{breach_repeat}"

[contacts.ann]
name = "Ann Oncall"
[contacts.bob]
name = "Bob Oncall"
[contacts.cat]
name = "Cat Standin"

[schedules.managers]
members = ["ann", "bob"]
start = "2026-03-02T00:00:00Z"
shift = "1d"
overrides = [
  {{ start = "2026-03-03T10:00:00Z", end = "2026-03-03T12:00:00Z", contact = "cat" }},
]

[chains.default]
levels = [
  {{ name = "caseworker", notify = ["caseworker"], timeout = "1h" }},
  {{ name = "supervisor", notify = ["supervisor"], timeout = "1h" }},
  {{ name = "manager", notify = ["schedule:managers"] }},
]

[jurisdictions.federal]
obligations = []

[[jurisdictions."KY-111".obligations]]
id = "law_enforcement_report"
title = "Report to law enforcement"
opens_on = "reported"
clock = "agency_learned_at"
due = "{due}"
satisfied_by = {{ recipient = "law_enforcement" }}
source = "test rule"
"""


def write_policy(path: Path, **values: str) -> Path:
    settings = {
        "version": "t1",
        "snooze": "20m",
        "breach_repeat": "1h",
        "due": "3h",
        **values,
    }
    path.write_text(POLICY.format(**settings))
    return path


@dataclass
class Notifier:
    pool: asyncpg.Pool
    clock: ManualClock
    ctx: AlertingContext
    metrics: handlers.NotifierMetrics
    scheduler: TimerScheduler

    async def handle(self, event_type: str, data: dict[str, Any]) -> None:
        event = self.event(event_type, data)
        async with self.pool.acquire() as conn, conn.transaction():
            await handlers.apply_episode_event(_port(conn, self.ctx), event, self.deps)

    def event(self, event_type: str, data: dict[str, Any]) -> CloudEvent:
        return CloudEvent.new(
            type=event_type,
            source="service/intake",
            subject=str(data["episode_id"]),
            data=data,
            time=self.clock.now(),
        )

    async def handle_batch(self, events: list[CloudEvent], conn: Conn) -> None:
        """Events as the Kafka consumer hands a batch over: one port, deferring."""
        port_of = partial(PostgresNotifier, route=self.ctx.route, defer=True)

        async def handle(port: PostgresNotifier, events: Sequence[CloudEvent]) -> None:
            await handlers.apply_episode_events(port, events, self.deps)

        await on_port(port_of, handle)(conn, [(e, _message(e)) for e in events])

    def reported(self, episode_id: UUID, county: str = "KY-111") -> dict[str, Any]:
        learned = self.clock.now()
        report = make_report(
            county_code=county,
            last_seen_at=(learned - 2 * H).isoformat(),
            discovered_at=(learned - H).isoformat(),
            agency_learned_at=learned.isoformat(),
        )
        return {**report, "episode_id": str(episode_id), "completeness": []}

    async def report(self, county: str = "KY-111") -> UUID:
        episode_id = uuid4()
        await self.handle(EventType.EPISODE_REPORTED, self.reported(episode_id, county))
        return episode_id

    async def at(self, when: datetime) -> None:
        """Move the clock and fire everything due by then."""
        self.clock.set(when)
        while await self.scheduler.fire_due():
            pass

    async def alerts(self, episode_id: UUID) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await postgres.alerts_of(conn, episode_id)]

    async def obligation(self, episode_id: UUID) -> dict[str, Any]:
        rows = await self.pool.fetch(
            "SELECT * FROM obligations WHERE episode_id = $1", episode_id
        )
        assert len(rows) == 1
        return dict(rows[0])

    async def ack(self, alert_id: UUID, who: str) -> handlers.AckOutcome:
        async with self.pool.acquire() as conn, conn.transaction():
            return await handlers.acknowledge(
                _port(conn, self.ctx), alert_id, acked_by=who, note=None, deps=self.deps
            )

    @property
    def deps(self) -> handlers.Deps:
        return handlers.Deps(self.ctx, self.metrics)

    def with_policy(self, path: Path) -> None:
        """An operator edits the policy file and restarts the service."""
        self.ctx = replace(self.ctx, policy=load_policy(path))
        self.scheduler = _scheduler(self.pool, self.clock, self.ctx, self.metrics)


def _message(event: CloudEvent) -> RawMessage:
    return RawMessage("mfc.episodes.v1", 0, 0, None, event.to_bytes())


def _port(conn, ctx: AlertingContext) -> PostgresNotifier:
    return PostgresNotifier(conn, route=ctx.route)


def _scheduler(pool, clock, ctx, metrics) -> TimerScheduler:
    port_of = partial(PostgresNotifier, route=ctx.route)
    return TimerScheduler(
        pool,
        fire_batch=handlers.fire_batch(port_of, handlers.Deps(ctx, metrics)),
        clock=clock,
        registry=CollectorRegistry(),
    )


@pytest.fixture
async def notifier(infra, unique, tmp_path) -> AsyncIterator[Notifier]:
    pool = await create_pool(infra.database_url, schema=unique)
    await apply_migrations(
        pool, service_migrations("notifier", ("timers", "deliveries"))
    )
    clock = ManualClock(START)
    ctx = AlertingContext(
        policy=load_policy(write_policy(tmp_path / "policy.toml")),
        clock=clock,
        source="service/notifier",
        episode_url_template="https://mfc.example/episodes/{episode_id}",
        alert_url_template="https://mfc.example/alerts/{alert_id}",
        route=Route("http://127.0.0.1:9/alerts", email_enabled=False),
    )
    metrics = handlers.NotifierMetrics(CollectorRegistry())
    try:
        yield Notifier(pool, clock, ctx, metrics, _scheduler(pool, clock, ctx, metrics))
    finally:
        await pool.close()


def steps(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["step_key"]: a for a in alerts}


async def test_an_ack_quiets_its_level_while_escalation_goes_on(notifier, tmp_path):
    notifier.with_policy(write_policy(tmp_path / "long-snooze.toml", snooze="90m"))
    episode_id = await notifier.report()
    await notifier.at(START)
    opened = steps(await notifier.alerts(episode_id))["escalate:0"]
    assert opened["level_name"] == "caseworker"

    outcome = await notifier.ack(opened["id"], "cw-1")
    assert outcome.snoozed_until == START + 90 * M
    # The caseworker's reminder (30 min) waits for the snooze to end ...
    await notifier.at(START + 45 * M)
    assert "remind:0" not in steps(await notifier.alerts(episode_id))
    # ... but the duty is still undone, so the supervisor is alerted on time.
    await notifier.at(START + H)
    fired = steps(await notifier.alerts(episode_id))
    assert fired["escalate:1"]["scheduled_at"] == START + H
    assert "remind:0" not in fired
    await notifier.at(START + 90 * M)
    fired = steps(await notifier.alerts(episode_id))
    assert fired["remind:0"]["scheduled_at"] == START + 90 * M

    # A later ack at a higher level covers the lower ones for its own snooze.
    await notifier.ack(fired["escalate:1"]["id"], "sv-1")
    obligation = await notifier.obligation(episode_id)
    assert obligation["snoozed_level"] == 1
    assert obligation["snoozed_until"] == START + 180 * M


async def test_the_top_levels_ack_postpones_the_breach_repeat(notifier):
    episode_id = await notifier.report()
    await notifier.at(START + 3 * H)
    breach = steps(await notifier.alerts(episode_id))["breach:0"]
    outcome = await notifier.ack(breach["id"], "ann")
    assert outcome.snoozed_until == START + 3 * H + 20 * M
    await notifier.at(START + 4 * H)
    # The repeat was due at 4 h and was not quiet: the snooze ended at 3 h 20.
    assert steps(await notifier.alerts(episode_id))["breach:1"]
    # Acked again, just before the next repeat: it waits for the snooze to end.
    breach1 = steps(await notifier.alerts(episode_id))["breach:1"]
    await notifier.at(START + 4 * H + 50 * M)
    await notifier.ack(breach1["id"], "ann")
    await notifier.at(START + 5 * H)
    assert "breach:2" not in steps(await notifier.alerts(episode_id))
    await notifier.at(START + 5 * H + 10 * M)
    assert (
        steps(await notifier.alerts(episode_id))["breach:2"]["scheduled_at"]
        == START + 5 * H + 10 * M
    )


async def test_an_open_obligation_keeps_the_policy_it_opened_under(notifier, tmp_path):
    before = await notifier.report()
    await notifier.at(START)
    old_digest = (await notifier.obligation(before))["policy_digest"]
    notifier.with_policy(
        write_policy(
            tmp_path / "edited.toml",
            version="t2",
            snooze="2h",
            breach_repeat="10m",
            due="2h",
        )
    )
    after = await notifier.report()
    first, second = await notifier.obligation(before), await notifier.obligation(after)
    assert first["policy_digest"] == old_digest != second["policy_digest"]
    assert (first["due_at"], second["due_at"]) == (START + 3 * H, START + 2 * H)
    assert (first["snooze"], second["snooze"]) == (20 * M, 2 * H)

    await notifier.at(START + 2 * H)
    await notifier.at(START + 2 * H + 10 * M)
    new = steps(await notifier.alerts(after))
    assert new["breach:1"]["scheduled_at"] == START + 2 * H + 10 * M
    # The edited policy repeats breaches every 10 min; the old obligation keeps 1 h.
    await notifier.at(START + 3 * H)
    await notifier.at(START + 3 * H + 10 * M)
    old = steps(await notifier.alerts(before))
    assert "breach:1" not in old
    await notifier.at(START + 4 * H)
    assert steps(await notifier.alerts(before))["breach:1"]
    ack = await notifier.ack(old["breach:0"]["id"], "ann")
    assert ack.snoozed_until == START + 4 * H + 20 * M  # the old snooze, not 2 h


async def test_obligations_open_together_once_each_with_their_timing_exact(notifier):
    known = await notifier.report()
    async with notifier.pool.acquire() as conn, conn.transaction():
        port = _port(conn, notifier.ctx)
        episode = await port.lock_episode(known)
        assert episode is not None
        twin = replace(episode, id=uuid4())
        await port.add_episodes([twin])
        # Exact to the microsecond, and a sign per field (not a policy's value).
        odd = (timedelta(days=1, seconds=5, microseconds=7), 30 * M, -H)
        policy = notifier.ctx.policy
        [draft] = to_open(policy, twin, Trigger.REPORTED, now=START)
        draft = replace(draft, reminders=odd)
        again = replace(draft, id=uuid4())  # same episode and kind
        [already] = to_open(policy, episode, Trigger.REPORTED, now=START)

        opened = await port.add_obligations([draft, again, already])

    assert opened == {draft.id}
    row = await notifier.obligation(twin.id)
    assert row["id"] == draft.id
    assert row["reminders"] == list(odd)
    assert (row["snooze"], row["breach_repeat"]) == (draft.snooze, draft.breach_repeat)
    assert row["rule"] == draft.rule.model_dump(mode="json")
    assert row["chain"] == draft.chain.model_dump(mode="json")


async def test_the_schedule_names_whoever_is_on_call_when_the_step_fires(notifier):
    # Reported Tuesday 08:00: the manager level is reached at 10:00, inside Cat's
    # override, though Bob was on call when the obligation opened.
    tuesday = START + timedelta(days=1) - H
    notifier.clock.set(tuesday)
    episode_id = await notifier.report()
    await notifier.at(tuesday + 2 * H)
    fired = steps(await notifier.alerts(episode_id))
    assert [r["id"] for r in fired["escalate:2"]["recipients"]] == ["cat"]
    await notifier.at(tuesday + 3 * H)  # the breach at 11:00, still Cat
    await notifier.at(tuesday + 4 * H)  # the repeat at 12:00: the override is over
    fired = steps(await notifier.alerts(episode_id))
    assert [r["id"] for r in fired["breach:0"]["recipients"]] == ["cat"]
    assert [r["id"] for r in fired["breach:1"]["recipients"]] == ["bob"]


async def test_closing_the_episode_makes_open_obligations_moot_and_stops_alerts(
    notifier,
):
    episode_id = await notifier.report()
    await notifier.at(START + 30 * M)
    await notifier.handle(
        EventType.EPISODE_CLOSED,
        {
            "episode_id": str(episode_id),
            "county_code": "KY-111",
            "reason": "court jurisdiction ended",
            "closed_at": (START + 30 * M).isoformat(),
            "closed_by": "sv-1",
        },
    )
    obligation = await notifier.obligation(episode_id)
    assert obligation["status"] == "moot"
    assert obligation["closed_reason"] == "episode closed: court jurisdiction ended"
    count = len(await notifier.alerts(episode_id))
    await notifier.at(START + 6 * H)
    assert len(await notifier.alerts(episode_id)) == count
    pending = await notifier.pool.fetchval(
        "SELECT count(*) FROM timers WHERE subject_id = $1 AND fired_at IS NULL",
        obligation["id"],
    )
    assert pending == 0
    moot = [
        CloudEvent.model_validate_json(r["payload"])
        for r in await notifier.pool.fetch("SELECT payload FROM outbox")
    ]
    assert [e.type for e in moot].count("mfc.obligation.moot") == 1


async def test_a_batch_writes_its_steps_and_events_once_at_its_end(notifier):
    ids = [uuid4() for _ in range(5)]
    batch = [
        notifier.event(EventType.EPISODE_REPORTED, notifier.reported(i)) for i in ids
    ]
    async with notifier.pool.acquire() as conn, conn.transaction():
        counting = Counting(conn)
        await notifier.handle_batch(batch, counting)  # type: ignore[arg-type]

    # Episodes, obligations, steps and events: a statement each for the batch.
    assert len(counting.statements) == 4
    assert [q for q in counting.statements if "INSERT INTO timers" in q] != []
    for episode_id in ids:
        obligation = await notifier.obligation(episode_id)
        pending = await notifier.pool.fetchval(
            "SELECT count(*) FROM timers WHERE subject_id = $1 AND fired_at IS NULL",
            obligation["id"],
        )
        assert pending == 1
    subjects = [
        CloudEvent.model_validate_json(r["payload"]).subject
        for r in await notifier.pool.fetch("SELECT payload FROM outbox ORDER BY id")
    ]
    assert subjects == [str(i) for i in ids]  # the order they were handled in


async def test_a_report_closed_in_the_same_batch_leaves_no_step_pending(notifier):
    episode_id = uuid4()
    closed = {
        "episode_id": str(episode_id),
        "county_code": "KY-111",
        "reason": "found before anyone was told",
        "closed_at": START.isoformat(),
        "closed_by": "sv-1",
    }
    batch = [
        notifier.event(EventType.EPISODE_REPORTED, notifier.reported(episode_id)),
        notifier.event(EventType.EPISODE_CLOSED, closed),
    ]
    async with notifier.pool.acquire() as conn, conn.transaction():
        await notifier.handle_batch(batch, conn)

    obligation = await notifier.obligation(episode_id)
    assert obligation["status"] == "moot"
    pending = await notifier.pool.fetchval(
        "SELECT count(*) FROM timers WHERE subject_id = $1 AND fired_at IS NULL",
        obligation["id"],
    )
    assert pending == 0  # the close saw the step its report had only just kept
    events = [
        CloudEvent.model_validate_json(r["payload"]).type
        for r in await notifier.pool.fetch("SELECT payload FROM outbox ORDER BY id")
    ]
    assert events == ["mfc.obligation.opened", "mfc.obligation.moot"]
    await notifier.at(START + 6 * H)
    assert await notifier.alerts(episode_id) == []


async def test_a_batch_that_fails_writes_none_of_what_it_deferred(notifier):
    batch = [notifier.event(EventType.EPISODE_REPORTED, notifier.reported(uuid4()))]
    async with notifier.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await notifier.handle_batch(batch, conn)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1  # in its own
        await transaction.rollback()  # the commit never comes
    assert await notifier.pool.fetchval("SELECT count(*) FROM timers") == 0
    assert await notifier.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_an_update_naming_an_indian_child_opens_californias_tribe_notice(
    notifier,
):
    notifier.with_policy(default_policy_path())
    episode_id = await notifier.report("CA-037")  # indian_child unknown
    kinds = "SELECT kind, clock_start FROM obligations WHERE episode_id = $1"
    assert "tribe_notice_missing" not in {
        r["kind"] for r in await notifier.pool.fetch(kinds, episode_id)
    }
    notifier.clock.advance(3 * H)
    await notifier.handle(
        EventType.EPISODE_UPDATED,
        {
            "episode_id": str(episode_id),
            "county_code": "CA-037",
            "child": {"indian_child": True},
            "updated_by": "cw-1",
        },
    )
    opened = {r["kind"]: r for r in await notifier.pool.fetch(kinds, episode_id)}
    assert opened["tribe_notice_missing"]["clock_start"] == START + 3 * H
    assert opened["parent_notice_missing"]["clock_start"] == START


async def test_obligations_are_found_by_status_and_due_time(notifier):
    early = await notifier.report()
    notifier.clock.advance(H)
    late = await notifier.report()
    await notifier.at(START + 3 * H)  # the first breaches; the second is due at 4 h

    async def found(**query: Any) -> list[UUID]:
        async with notifier.pool.acquire() as conn:
            rows = await postgres.find_obligations(
                conn,
                **{"episode_id": None, "status": None, "due_before": None, **query},
                limit=100,
            )
        return [r["episode_id"] for r in rows]

    assert await found(due_before=START + 3 * H + M) == [early]
    assert await found(due_before=START + 5 * H) == [early, late]
    assert await found(due_before=START + 3 * H) == []
    assert await found(status="breached") == [early]
    assert await found(status="open", episode_id=late) == [late]


async def test_the_watchdog_stays_silent_when_a_step_is_stuck_or_missing(notifier):
    with webhook_receiver() as receiver:
        registry = CollectorRegistry()
        watchdog = Watchdog(
            notifier.pool,
            clock=notifier.clock,
            registry=registry,
            interval=timedelta(seconds=1),
            margin=timedelta(minutes=2),
            heartbeat_url=receiver.url.replace("/alerts", "/heartbeat"),
        )
        episode_id = await notifier.report()
        await notifier.at(START)
        healthy = {"healthy": True, "unscheduled": 0, "stuck": 0}
        assert await watchdog.check() == healthy
        assert receiver.heartbeats == 1
        # What the "close to breach" alert reads: time left on the earliest one.
        obligation = await notifier.obligation(episode_id)
        left = registry.get_sample_value(
            "mfc_obligation_next_due_seconds",
            {"kind": obligation["kind"], "jurisdiction": obligation["jurisdiction"]},
        )
        assert left == (obligation["due_at"] - START).total_seconds()

        # The scheduler stops firing: once a step is overdue past the margin, the
        # watchdog says so and the heartbeat stops (the dead man's switch).
        notifier.clock.set(START + 33 * M)  # the 30 min reminder is 3 min late
        stuck = {"healthy": False, "unscheduled": 0, "stuck": 1}
        assert await watchdog.check() == stuck
        assert registry.get_sample_value("mfc_watchdog_healthy") == 0

        # An open obligation with nothing scheduled (timers lost in a bad restore).
        obligation = await notifier.obligation(episode_id)
        await notifier.pool.execute(
            "DELETE FROM timers WHERE subject_id = $1", obligation["id"]
        )
        lost = {"healthy": False, "unscheduled": 1, "stuck": 0}
        assert await watchdog.check() == lost
        assert receiver.heartbeats == 1


async def test_the_watchdog_counts_right_after_a_bulk_load(notifier, infra, unique):
    """Rounds on empty tables, then 30,000 open obligations at once (a restore, or a
    storm's intake): the next round still answers within its time limit. A plan kept
    from the empty tables compared every obligation with every timer (minutes at
    100,000, holding back VACUUM for the whole notifier)."""
    pool = await create_pool(infra.database_url, schema=unique, min_size=1, max_size=1)
    try:
        watchdog = Watchdog(
            pool,
            clock=notifier.clock,
            registry=CollectorRegistry(),
            interval=timedelta(seconds=1),
            margin=timedelta(minutes=2),
            heartbeat_url=None,
            timeout=timedelta(seconds=2),
        )
        for _ in range(6):
            assert (await watchdog.check())["healthy"]
        await pool.execute(BULK_LOAD, 30_000, START + H)
        assert await watchdog.check() == {
            "healthy": False,  # one open obligation in three has nothing scheduled
            "unscheduled": 10_000,
            "stuck": 0,
        }
    finally:
        await pool.close()


BULK_LOAD = """
WITH n AS (SELECT g, gen_random_uuid() AS id FROM generate_series(1, $1) g),
e AS (
    INSERT INTO episodes (episode_id, county_code, child_initials, caseworker,
                          supervisor, facts, times)
    SELECT id, '29001', 'A.B.', '{}', '{}', '{}', '{}' FROM n
),
o AS (
    INSERT INTO obligations (id, episode_id, county_code, jurisdiction, kind, title,
                             opened_at, clock_start, due_at, policy_digest, rule, chain)
    SELECT id, id, '29001', 'US', 'report', 'Report', $2, $2, $2, 'x', '{}', '{}'
    FROM n
)
INSERT INTO timers (subject_id, step_key, kind, fire_at)
SELECT id, 'breach:0', 'breach', $2 FROM n WHERE g % 3 <> 0
"""


async def test_every_alert_links_to_its_console_page_and_its_episodes(notifier):
    episode_id = await notifier.report()
    await notifier.at(START)
    opened = steps(await notifier.alerts(episode_id))["escalate:0"]
    payload = await notifier.pool.fetchval(
        "SELECT payload FROM deliveries WHERE alert_id = $1 AND channel = 'webhook'",
        opened["id"],
    )
    assert payload["alert_url"] == f"https://mfc.example/alerts/{opened['id']}"
    assert payload["episode_url"] == f"https://mfc.example/episodes/{episode_id}"
    assert f"Open and acknowledge: {payload['alert_url']}\n" in payload["text"]
    assert f"Episode: {payload['episode_url']}\n" in payload["text"]
    assert "POST /v1/alerts" not in payload["text"]


async def test_the_obligation_inbox_is_most_urgent_first_with_its_alerting_state(
    notifier,
):
    notifier.clock.set(START + H)
    later = await notifier.report()  # due at 4 h, opened first
    notifier.clock.set(START)
    sooner = await notifier.report()  # due at 3 h
    await notifier.at(START + 30 * M)  # escalate:0 and the 30 min reminder
    await notifier.at(START + H)  # the supervisor (level 1) for `sooner`
    fired = steps(await notifier.alerts(sooner))
    assert fired["escalate:1"]["level"] == 1
    await notifier.ack(fired["escalate:1"]["id"], "sv-1")

    async def inbox(**query: Any) -> list[dict[str, Any]]:
        async with notifier.pool.acquire() as conn:
            rows = await postgres.find_obligations(
                conn,
                **{"episode_id": None, "status": "open", "due_before": None, **query},
                limit=100,
            )
        return [dict(r) for r in rows]

    first, second = await inbox()
    assert [first["episode_id"], second["episode_id"]] == [sooner, later]
    assert first["due_at"] < second["due_at"]
    assert first["child_initials"] == second["child_initials"] == "J.T."
    assert first["source"] == "test rule"
    assert first["level_reached"] == 1
    newest = max(
        (await notifier.alerts(sooner)), key=lambda a: (a["created_at"], a["step_key"])
    )
    assert first["last_alert_id"] == newest["id"] == fired["escalate:1"]["id"]
    assert first["acked"] is True
    # `later` opened at 1 h: its first alert fired with the clock at 1 h.
    assert second["level_reached"] == 0
    assert (
        second["last_alert_id"]
        == steps(await notifier.alerts(later))["escalate:0"]["id"]
    )
    assert second["acked"] is False

    # A newer alert than the acked one: the inbox shows it unacknowledged.
    await notifier.at(START + 2 * H)  # the manager (level 2)
    [first, _] = await inbox()
    assert (
        first["last_alert_id"]
        == steps(await notifier.alerts(sooner))["escalate:2"]["id"]
    )
    assert first["acked"] is False
    assert first["level_reached"] == 2

    # Before any alert fires: nothing reached, nothing acked.
    notifier.clock.set(START + 2 * H)
    fresh = await notifier.report()
    [row] = await inbox(episode_id=fresh)
    assert (row["level_reached"], row["last_alert_id"], row["acked"]) == (
        None,
        None,
        False,
    )


async def test_alerts_are_found_newest_first_and_only_those_still_open(notifier):
    settled = await notifier.report()
    await notifier.at(START)
    notifier.clock.set(START + 10 * M)
    live = await notifier.report()
    await notifier.at(START + 10 * M)
    await notifier.at(START + 30 * M)  # the reminder of `settled`
    await notifier.handle(
        EventType.NOTIFICATION_RECORDED,
        {
            "episode_id": str(settled),
            "county_code": "KY-111",
            "recipient": "law_enforcement",
            "method": "phone",
            "notified_at": (START + 35 * M).isoformat(),
            "notified_by": "cw-1",
        },
    )
    assert (await notifier.obligation(settled))["status"] == "satisfied"

    async def found(**query: Any) -> list[tuple[UUID, str]]:
        async with notifier.pool.acquire() as conn:
            rows = await postgres.find_alerts(
                conn, **{"episode_id": None, "open_only": False, "limit": 100, **query}
            )
        return [(r["episode_id"], r["step_key"]) for r in rows]

    assert await found() == [
        (settled, "remind:0"),
        (live, "escalate:0"),
        (settled, "escalate:0"),
    ]
    assert await found(open_only=True) == [(live, "escalate:0")]
    assert await found(limit=1) == [(settled, "remind:0")]
    # One episode's: in the order they were raised, as before.
    assert await found(episode_id=settled) == [
        (settled, "escalate:0"),
        (settled, "remind:0"),
    ]
    assert await found(episode_id=settled, open_only=True) == []
    assert await found(counties=["KY-111"]) == await found()
    assert await found(counties=["TX-201"]) == []
