"""The notifier's handlers against the in-memory port: load, decide, save, emit."""

from datetime import datetime
from uuid import UUID, uuid4

import pytest

from notifier.domain.model import Ack, EpisodeStatus, ObligationStatus
from notifier.handlers import (
    AlertNotFoundError,
    Deps,
    acknowledge,
    apply_episode_event,
    apply_episode_events,
    fire_steps,
)
from notifier.ports import FakeNotifier, FakeObligationRow
from shared.clock import ManualClock
from shared.published import AlertEvent, ObligationEvent
from shared.timers import KEEP, Move, Outcome
from tests.unit.notifier.builders import (
    START,
    H,
    closed,
    located,
    make_deps,
    notified,
    reported,
    screened,
    updated,
)

Episode = tuple[UUID, str]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def deps(clock: ManualClock) -> Deps:
    return make_deps(clock)


@pytest.fixture
def port() -> FakeNotifier:
    return FakeNotifier()


def episode_in(county: str) -> Episode:
    return uuid4(), county


def by_kind(port: FakeNotifier) -> dict[str, FakeObligationRow]:
    return {row.opened.rule.id: row for row in port.obligations.values()}


def types(port: FakeNotifier) -> list[str]:
    return [o.event.type for o in port.events]


def data_of(port: FakeNotifier, event_type: str) -> list[dict]:
    return [o.event.data for o in port.events if o.event.type == event_type]


async def fire_due(port: FakeNotifier, deps: Deps, at: datetime) -> dict[int, Outcome]:
    """Fire every pending step due by ``at`` in one batch, as the scheduler would,
    and settle the outcomes."""
    deps.ctx.clock.set(at)  # type: ignore[attr-defined]
    batch = sorted(
        (t for t in port.timers.values() if t.fire_at <= at), key=lambda t: t.id
    )
    outcomes = await fire_steps(port, batch, at, deps)
    port.settle(outcomes)
    return outcomes


async def run_until(port: FakeNotifier, deps: Deps, until: datetime) -> None:
    """Fire each step at its own time, up to ``until``."""
    while port.timers and (at := min(t.fire_at for t in port.timers.values())) <= until:
        await fire_due(port, deps, at)


# --------------------------------------------------------------------------- #
# Episode events
# --------------------------------------------------------------------------- #


async def test_a_report_opens_the_rules_obligations_each_with_its_first_step(
    port, deps
):
    episode = episode_in("FL-086")
    await apply_episode_event(port, reported(episode), deps)

    rows = by_kind(port)
    assert set(rows) == {"law_enforcement_report", "ncmec_report"}
    assert rows["law_enforcement_report"].opened.due_at == START - H + 4 * H
    assert sorted((s.subject_id, s.step_key, s.fire_at) for s in port.scheduled) == (
        sorted((row.opened.id, "escalate:0", START) for row in rows.values())
    )
    assert types(port) == [ObligationEvent.OPENED] * 2
    assert {d["opened_by"] for d in data_of(port, ObligationEvent.OPENED)} == {
        "reported"
    }
    assert port.episodes[episode[0]].child_initials == "J.T."


async def test_a_report_seen_twice_opens_nothing_twice(port, deps):
    episode = episode_in("FL-086")
    await apply_episode_event(port, reported(episode), deps)
    await apply_episode_event(port, reported(episode), deps)

    assert len(port.obligations) == 2
    assert len(port.scheduled) == 2
    assert types(port) == [ObligationEvent.OPENED] * 2


async def test_an_update_adding_an_endangerment_opens_floridas_immediate_report(
    port, deps
):
    episode = episode_in("FL-086")
    await apply_episode_event(port, reported(episode), deps)
    later = START + 5 * H
    deps.ctx.clock.set(later)
    endangered = {"endangerments": {"suicidal_tendencies": True}}

    await apply_episode_event(port, updated(episode, later, **endangered), deps)

    immediate = by_kind(port)["law_enforcement_report_immediate"].opened
    assert (immediate.clock_start, immediate.due_at) == (later, later + H)
    assert immediate.opened_by == "update"
    assert port.episodes[episode[0]].facts.facts.endangered
    assert len(port.obligations) == 3


async def test_an_update_saying_nothing_the_rules_read_changes_nothing(port, deps):
    episode = episode_in("FL-086")
    await apply_episode_event(port, reported(episode), deps)
    before = port.episodes[episode[0]]

    await apply_episode_event(port, updated(episode, START, note="seen"), deps)

    assert port.episodes[episode[0]] is before
    assert len(port.obligations) == 2


async def test_an_update_after_the_child_is_back_opens_no_reporting_duty(port, deps):
    episode = episode_in("FL-086")
    await apply_episode_event(port, reported(episode), deps)
    await apply_episode_event(port, located(episode, START + H), deps)
    endangered = {"endangerments": {"suicidal_tendencies": True}}

    await apply_episode_event(port, updated(episode, START + 2 * H, **endangered), deps)

    assert "law_enforcement_report_immediate" not in by_kind(port)
    assert port.episodes[episode[0]].facts.facts.endangered


async def test_locating_the_child_opens_the_recovery_notices(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)

    await apply_episode_event(port, located(episode, START + 30 * H), deps)

    rows = by_kind(port)
    assert rows["recovery_notice_le"].opened.due_at == START + 54 * H
    assert "recovery_notice_ncmec" in rows
    assert port.episodes[episode[0]].status is EpisodeStatus.LOCATED
    assert len(port.scheduled) == len(rows) == 4


async def test_a_screening_finding_trafficking_opens_the_law_enforcement_report(
    port, deps
):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    await apply_episode_event(port, located(episode, START + 30 * H), deps)

    at = START + 40 * H
    await apply_episode_event(port, screened(episode, at, trafficking=True), deps)

    assert by_kind(port)["trafficking_victim_le_report"].opened.due_at == at + 24 * H
    assert port.episodes[episode[0]].facts.facts.trafficking_indicated is True


async def test_events_of_an_episode_never_reported_are_ignored(port, deps):
    episode = episode_in("WA-033")
    for event in (
        located(episode, START),
        screened(episode, START, trafficking=True),
        notified(episode, START, "ncmec"),
        closed(episode, START),
    ):
        await apply_episode_event(port, event, deps)

    assert port.obligations == {}
    assert port.events == []


async def test_a_matching_notice_satisfies_and_retires_its_step(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    ncmec = by_kind(port)["ncmec_report"].opened

    event = notified(episode, START + 2 * H, "ncmec", reference_number="NCMEC-1")
    await apply_episode_event(port, event, deps)

    row = by_kind(port)["ncmec_report"]
    assert row.status is ObligationStatus.SATISFIED
    assert (row.satisfied_by, row.reference_number) == (event.id, "NCMEC-1")
    assert list(port.cancelled) == [ncmec.id]
    [satisfied] = data_of(port, ObligationEvent.SATISFIED)
    assert satisfied["on_time"] is True
    assert satisfied["obligation_id"] == str(ncmec.id)
    assert by_kind(port)["law_enforcement_report"].status is ObligationStatus.OPEN


async def test_a_notice_without_the_required_reference_number_leaves_it_waiting(
    port, deps
):
    episode = episode_in("NC-063")
    await apply_episode_event(port, reported(episode), deps)

    await apply_episode_event(port, notified(episode, START + H, "ncmec"), deps)

    row = by_kind(port)["ncmec_report"]
    assert row.status is ObligationStatus.OPEN
    assert "reference_number" in (row.waiting_reason or "")
    assert port.cancelled == {}
    [waiting] = data_of(port, ObligationEvent.WAITING)
    assert waiting["reason"] == row.waiting_reason


async def test_closing_makes_the_open_duties_moot_and_retires_their_steps(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    at = START + 2 * H
    await apply_episode_event(port, notified(episode, at, "law_enforcement"), deps)

    await apply_episode_event(port, closed(episode, at), deps)

    rows = by_kind(port)
    assert rows["ncmec_report"].status is ObligationStatus.MOOT
    assert rows["ncmec_report"].closed_reason == "episode closed: home, debriefed"
    assert rows["law_enforcement_report"].status is ObligationStatus.SATISFIED
    assert rows["ncmec_report"].opened.id in port.cancelled
    [moot] = data_of(port, ObligationEvent.MOOT)
    assert (moot["kind"], moot["was_breached"]) == ("ncmec_report", False)
    assert port.episodes[episode[0]].status is EpisodeStatus.CLOSED
    assert port.timers.keys() == set()


def outcome(port: FakeNotifier) -> tuple[object, ...]:
    """What handling left behind, without the random ids."""
    episode_of = {r.opened.id: r.opened.episode_id for r in port.obligations.values()}
    return (
        [(o.event.type, o.event.subject) for o in port.events],
        sorted(
            (str(r.opened.episode_id), r.opened.rule.id, r.status.value)
            for r in port.obligations.values()
        ),
        sorted(
            (str(episode_of[t.subject_id]), t.step_key, t.fire_at)
            for t in port.timers.values()
        ),
        {i: e.status for i, e in port.episodes.items()},
    )


async def test_a_batch_leaves_what_its_events_one_by_one_leave(clock):
    a, b, c = episode_in("FL-086"), episode_in("WA-033"), episode_in("FL-086")
    at = START + H
    batch = [
        reported(a),
        reported(b),
        reported(a),  # seen twice
        notified(a, at, "law_enforcement"),
        reported(c),
        closed(b, at),
        reported(b),  # a report after its close changes nothing
    ]
    one_by_one, together = FakeNotifier(), FakeNotifier()
    for event in batch:
        await apply_episode_event(one_by_one, event, make_deps(clock))
    await apply_episode_events(together, batch, make_deps(clock))

    assert outcome(together) == outcome(one_by_one)
    assert len(together.obligations) == 6


# --------------------------------------------------------------------------- #
# Firing steps
# --------------------------------------------------------------------------- #


async def test_a_batch_raises_each_alert_once_and_moves_each_timer_on(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    batch = list(port.timers.values())

    outcomes = await fire_steps(port, batch, START, deps)
    again = await fire_steps(port, batch, START, deps)  # the batch fired again

    assert len(port.alerts) == len(port.raised) == 2
    assert {a.reason for a in port.alerts} == {"opened"}
    assert outcomes == again
    for timer in batch:
        move = outcomes[timer.id]
        assert isinstance(move, Move)
        assert (move.step_key, move.fire_at) == ("remind:0", START + 2 * H)
    assert types(port) == [ObligationEvent.OPENED] * 2  # opening says nothing more


async def test_steps_remind_escalate_and_breach_once_with_their_events(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    ncmec = by_kind(port)["ncmec_report"].opened.id

    await run_until(port, deps, START + 26 * H)

    said = [
        (o.event.type, o.event.data["level"])
        for o in port.events
        if o.event.data.get("obligation_id") == str(ncmec)
        and o.event.type != ObligationEvent.OPENED
    ]
    assert said == [
        (ObligationEvent.REMINDED, 0),
        (ObligationEvent.ESCALATED, 1),
        (ObligationEvent.ESCALATED, 2),
        (ObligationEvent.REMINDED, 2),
        (ObligationEvent.REMINDED, 2),
        (ObligationEvent.BREACHED, 2),
    ]
    row = port.obligations[ncmec]
    assert row.breached_at == START + 24 * H
    steps_alerted = sorted(
        a.step_key for a in port.raised.values() if a.obligation_id == ncmec
    )
    assert "breach:2" in steps_alerted  # the breach repeats, without events
    assert all(
        d["alert_id"] is not None for d in data_of(port, ObligationEvent.BREACHED)
    )


async def test_a_busy_obligation_keeps_its_timer_for_the_next_round(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    busy = by_kind(port)["ncmec_report"].opened.id
    port.busy.add(busy)

    outcomes = await fire_due(port, deps, START)

    [kept] = [t for t in port.timers.values() if t.subject_id == busy]
    assert outcomes[kept.id] == KEEP
    assert kept.step_key == "escalate:0"
    [raised] = port.raised.values()
    assert raised.obligation_id != busy


async def test_a_closed_obligations_timer_retires(port, deps):
    episode = episode_in("WA-033")
    await apply_episode_event(port, reported(episode), deps)
    batch = list(port.timers.values())
    await apply_episode_event(port, closed(episode, START), deps)

    outcomes = await fire_steps(port, batch, START, deps)

    assert set(outcomes.values()) == {None}
    assert port.raised == {}


# --------------------------------------------------------------------------- #
# Acknowledgements
# --------------------------------------------------------------------------- #


async def opened_alert(port: FakeNotifier, deps: Deps, kind: str) -> UUID:
    """Report a WA episode, fire its opening alerts; the alert of ``kind``."""
    await apply_episode_event(port, reported(episode_in("WA-033")), deps)
    await fire_due(port, deps, START)
    obligation = by_kind(port)[kind].opened.id
    [alert] = [a for a in port.raised.values() if a.obligation_id == obligation]
    return alert.alert.id


async def test_an_ack_records_snoozes_and_the_end_of_the_snooze_alerts_again(
    port, deps, clock
):
    alert_id = await opened_alert(port, deps, "ncmec_report")
    obligation = port.raised[alert_id].obligation_id
    clock.set(START + H / 2)

    outcome = await acknowledge(
        port, alert_id, acked_by="cw-1", note="on it", deps=deps
    )

    until = START + 3 * H / 2
    assert outcome.snoozed_until == until
    assert outcome.acks == [Ack("cw-1", clock.now(), "on it")]
    row = port.obligations[obligation]
    assert (row.snoozed_until, row.snoozed_level) == (until, 0)
    [(_, moved)] = port.moved
    assert (moved.fire_at, moved.step_key.startswith("resume:")) == (until, True)
    [acked] = data_of(port, AlertEvent.ACKNOWLEDGED)
    assert (acked["level"], acked["acked_by"]) == (0, "cw-1")

    await fire_due(port, deps, until)

    [again] = [
        a
        for a in port.raised.values()
        if a.obligation_id == obligation and a.step_key.startswith("resume:")
    ]
    assert again.alert.reason == "reminded"
    assert again.alert in port.alerts


async def test_an_ack_of_a_satisfied_duty_is_kept_without_a_snooze(port, deps):
    alert_id = await opened_alert(port, deps, "ncmec_report")
    episode = (port.raised[alert_id].alert.episode_id, "WA-033")
    notice = notified(episode, START + H, "ncmec", reference_number="N-1")
    await apply_episode_event(port, notice, deps)

    outcome = await acknowledge(port, alert_id, acked_by="cw-1", note=None, deps=deps)

    assert outcome.snoozed_until is None
    assert port.moved == []
    assert len(port.acks[alert_id]) == 1


async def test_an_alert_of_another_county_is_not_found(port, deps):
    alert_id = await opened_alert(port, deps, "ncmec_report")

    with pytest.raises(AlertNotFoundError):
        await acknowledge(
            port,
            alert_id,
            acked_by="cw-2",
            note=None,
            deps=deps,
            in_scope=lambda county: county == "NC-063",
        )
    with pytest.raises(AlertNotFoundError):
        await acknowledge(port, uuid4(), acked_by="cw-2", note=None, deps=deps)

    assert port.acks == {}
    assert data_of(port, AlertEvent.ACKNOWLEDGED) == []
