"""Followup's handlers against the in-memory port: load, decide, save, emit."""

from dataclasses import replace
from datetime import timedelta
from itertools import count
from uuid import UUID

import pytest

from followup.domain.model import (
    PromptNotFoundError,
    PromptNotOpenError,
    PromptStatus,
    Series,
    SeriesStatus,
)
from followup.handlers import (
    complete_prompt,
    fire_step,
    fire_steps,
    handle_episode_event,
    handle_episode_events,
)
from followup.handlers.common import Deps
from followup.ports import FakeFollowup
from shared.clock import ManualClock
from shared.policy import PromptStart
from shared.published import PromptEvent
from shared.timers import Move, Step, Timer
from tests.unit.followup.builders import (
    ITEM,
    START,
    closed,
    located,
    make_deps,
    new_id,
    reported,
    screened,
    updated,
)

DAY = timedelta(days=1)
_timer_ids = count(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def deps(clock: ManualClock) -> Deps:
    return make_deps(clock)


@pytest.fixture
def port() -> FakeFollowup:
    return FakeFollowup()


@pytest.fixture
def episode_id() -> UUID:
    return new_id()


def series_of(port: FakeFollowup, rule_id: str) -> list[Series]:
    return [s for s in port.series.values() if s.rule.id == rule_id]


def step_of(port: FakeFollowup, subject_id: UUID) -> Step:
    [step] = [s for s in port.scheduled if s.subject_id == subject_id]
    return step


def types(port: FakeFollowup) -> list[str]:
    return [o.event.type for o in port.events]


async def fire(port: FakeFollowup, deps: Deps, step: Step | Move, subject: UUID):
    """Fire a step as the scheduler would, at its time."""
    deps.ctx.clock.set(step.fire_at)  # type: ignore[attr-defined]
    timer = Timer(next(_timer_ids), subject, step.step_key, step.kind, step.fire_at, {})
    return await fire_step(port, timer, step.fire_at, deps)


async def issue_first(port: FakeFollowup, deps: Deps, rule_id: str):
    [series] = series_of(port, rule_id)
    move = await fire(port, deps, step_of(port, series.id), series.id)
    [prompt] = [p for p in port.prompts.values() if p.series_id == series.id]
    return prompt, move


# --------------------------------------------------------------------------- #
# Episode events
# --------------------------------------------------------------------------- #


async def test_a_report_starts_the_search_series_and_the_incomplete_one(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)

    kinds = {s.rule.id: s.starts_on for s in port.series.values()}
    assert kinds == {
        "document_search_efforts": PromptStart.REPORTED,
        "supervisor_review": PromptStart.REPORTED,
        "contact_le_ncmec": PromptStart.REPORTED,
        "provide_missing_report_items": PromptStart.INCOMPLETE,
    }
    [search] = series_of(port, "document_search_efforts")
    [incomplete] = series_of(port, "provide_missing_report_items")
    assert step_of(port, search.id) == Step(
        search.id, "issue:0", "issue", START + DAY, {}
    )
    assert step_of(port, incomplete.id).fire_at == START
    assert port.episodes[episode_id].child_initials == "J.T."
    assert port.events == []


async def test_a_complete_report_starts_no_incomplete_series(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)

    assert not series_of(port, "provide_missing_report_items")


async def test_a_report_seen_twice_starts_each_series_once(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)
    await handle_episode_event(port, reported(episode_id, ITEM), deps)

    assert len(port.series) == 4
    assert len(port.scheduled) == 4


def outcome(port: FakeFollowup) -> tuple[object, ...]:
    """What handling left behind, without the random ids."""
    episode_of = {s.id: s.episode_id for s in port.series.values()} | {
        p.id: p.episode_id for p in port.prompts.values()
    }
    return (
        [(o.event.type, o.event.subject) for o in port.events],
        sorted(
            (str(s.episode_id), s.rule.id, s.trigger_id, s.status.value)
            for s in port.series.values()
        ),
        sorted(
            (str(episode_of[s.subject_id]), s.step_key, s.fire_at)
            for s in port.scheduled
        ),
        sorted(str(episode_of[i]) for i in port.cancelled),
        {i: e.status for i, e in port.episodes.items()},
    )


async def test_a_batch_leaves_what_its_events_one_by_one_leave(clock):
    a, b, c = new_id(), new_id(), new_id()
    batch = [
        reported(a, ITEM),
        reported(b),
        reported(a, ITEM),  # seen twice
        updated(a),
        reported(c, ITEM),
        located(b),
        closed(c),
        reported(c),  # a report after its close changes nothing
    ]
    one_by_one, together = FakeFollowup(), FakeFollowup()
    for event in batch:
        await handle_episode_event(one_by_one, event, make_deps(clock))
    await handle_episode_events(together, batch, make_deps(clock))

    assert outcome(together) == outcome(one_by_one)
    assert together.cancelled


async def test_a_fired_batch_leaves_what_its_steps_one_by_one_leave(clock):
    a, b = new_id(), new_id()

    async def ready() -> tuple[FakeFollowup, list[Timer]]:
        clock.set(START)
        port = FakeFollowup()
        for event in (reported(a, ITEM), reported(b), closed(b)):
            await handle_episode_event(port, event, make_deps(clock))
        firsts = [
            Timer(n, s.subject_id, s.step_key, s.kind, s.fire_at, {})
            for n, s in enumerate(port.scheduled)
        ]
        at = max(t.fire_at for t in firsts)
        clock.set(at)
        due = [t for t in firsts if t.fire_at <= at]
        return port, due + [replace(t, id=t.id + len(firsts)) for t in due]  # twice

    one_by_one, timers = await ready()
    alone = [
        await fire_step(one_by_one, t, clock.now(), make_deps(clock)) for t in timers
    ]
    together, timers = await ready()
    outcomes = await fire_steps(together, timers, clock.now(), make_deps(clock))

    assert [outcomes[t.id] for t in timers] == alone
    assert outcome(together) == outcome(one_by_one)
    prompts = list(together.prompts.values())
    assert {p.episode_id for p in prompts} == {a}  # b's series ended with it
    assert len({(p.series_id, p.occurrence) for p in prompts}) == len(prompts) > 1


async def test_an_update_supplying_the_items_ends_the_incomplete_series(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)
    prompt, _ = await issue_first(port, deps, "provide_missing_report_items")

    await handle_episode_event(port, updated(episode_id), deps)

    [incomplete] = series_of(port, "provide_missing_report_items")
    assert incomplete.status is SeriesStatus.ENDED
    ended = port.prompts[prompt.id]
    assert ended.status is PromptStatus.ENDED
    assert ended.ended_reason == "the report items were provided"
    assert {incomplete.id, prompt.id} <= port.cancelled.keys()
    assert types(port)[-1] == PromptEvent.ENDED
    assert port.events[-1].event.data["reason"] == "the report items were provided"
    assert port.events[-1].event.data["missing_items"] == [ITEM]
    assert series_of(port, "share_new_information"), "an update is new information"


async def test_an_item_missing_again_starts_a_new_incomplete_series(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)
    await handle_episode_event(port, updated(episode_id), deps)
    again = updated(episode_id, ITEM)

    await handle_episode_event(port, again, deps)

    first, second = sorted(
        series_of(port, "provide_missing_report_items"), key=lambda s: s.status
    )
    assert first.status is SeriesStatus.ACTIVE
    assert first.trigger_id == again.id, "keyed by the update"
    assert second.status is SeriesStatus.ENDED
    assert port.episodes[episode_id].completeness == (ITEM,)


async def test_an_update_while_items_are_still_prompted_for_starts_no_second_series(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)
    await handle_episode_event(port, updated(episode_id, ITEM), deps)

    assert len(series_of(port, "provide_missing_report_items")) == 1


async def test_located_ends_the_search_series_and_starts_the_return_ones(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)
    search_prompt, _ = await issue_first(port, deps, "document_search_efforts")

    await handle_episode_event(port, located(episode_id), deps)

    active = {s.rule.id for s in port.series.values() if s.status == "active"}
    assert active == {"trafficking_screening", "return_debrief"}
    assert port.prompts[search_prompt.id].ended_reason == "the child was located"
    assert port.episodes[episode_id].status == "located"
    assert types(port)[-1] == PromptEvent.ENDED


async def test_an_update_after_located_starts_nothing(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    await handle_episode_event(port, located(episode_id), deps)

    await handle_episode_event(port, updated(episode_id, ITEM), deps)

    assert not series_of(port, "share_new_information")
    assert not series_of(port, "provide_missing_report_items")


async def test_closed_ends_every_series_and_open_prompt(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    await handle_episode_event(port, located(episode_id), deps)
    debrief, _ = await issue_first(port, deps, "return_debrief")

    await handle_episode_event(port, closed(episode_id), deps)

    assert all(s.status is SeriesStatus.ENDED for s in port.series.values())
    assert port.prompts[debrief.id].ended_reason == "episode closed: home, debriefed"
    assert port.episodes[episode_id].status == "closed"
    assert port.cancelled.keys() >= set(port.series) | {debrief.id}


async def test_an_event_of_an_episode_never_reported_is_ignored(port, deps):
    await handle_episode_event(port, located(new_id()), deps)

    assert port.series == {}
    assert port.events == []


# --------------------------------------------------------------------------- #
# Occurrences
# --------------------------------------------------------------------------- #


async def test_an_occurrence_issues_a_prompt_schedules_overdue_and_moves_on(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id), deps)

    prompt, move = await issue_first(port, deps, "document_search_efforts")

    assert (prompt.occurrence, prompt.issued_at) == (0, START + DAY)
    assert prompt.due_at == START + 2 * DAY
    assert prompt.missing_items is None
    assert move == Move("issue:1", "issue", START + 2 * DAY, {})
    assert step_of(port, prompt.id) == Step(
        prompt.id, "overdue", "overdue", prompt.due_at, {}
    )
    assert types(port) == [PromptEvent.ISSUED]
    assert "missing_items" not in port.events[0].event.data
    [alert] = port.alerts
    assert (alert.reason, [r.id for r in alert.recipients]) == ("prompt", ["cw-1"])
    assert alert.scheduled_at == prompt.issued_at


async def test_the_next_occurrence_issues_the_next_prompt(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    first, move = await issue_first(port, deps, "document_search_efforts")

    following = await fire(port, deps, move, first.series_id)

    second = max(port.prompts.values(), key=lambda p: p.occurrence)
    assert (second.occurrence, second.issued_at) == (1, START + 2 * DAY)
    assert following == Move("issue:2", "issue", START + 3 * DAY, {})


async def test_an_incomplete_prompt_names_the_items_missing(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id, ITEM), deps)

    prompt, _ = await issue_first(port, deps, "provide_missing_report_items")

    assert prompt.missing_items == (ITEM,)
    assert port.events[0].event.data["missing_items"] == [ITEM]
    assert f"Still missing: {ITEM}\n" in port.alerts[0].text


async def test_a_series_stops_after_stop_after(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    [search] = series_of(port, "document_search_efforts")
    rule = search.rule.model_copy(update={"stop_after": 2 * DAY})
    port.series[search.id] = replace(search, rule=rule)

    _, move = await issue_first(port, deps, "document_search_efforts")
    assert move is not None
    assert move.fire_at == START + 2 * DAY
    last = await fire(port, deps, move, search.id)

    assert last is None
    assert len([p for p in port.prompts.values() if p.series_id == search.id]) == 2


async def test_an_ended_series_issues_nothing(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    [search] = series_of(port, "document_search_efforts")
    await handle_episode_event(port, closed(episode_id), deps)

    moved = await fire(port, deps, step_of(port, search.id), search.id)

    assert moved is None
    assert port.prompts == {}


async def test_an_overdue_prompt_escalates_to_the_escalate_to_person(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")

    moved = await fire(port, deps, step_of(port, prompt.id), prompt.id)

    assert moved is None
    assert port.prompts[prompt.id].overdue_at == prompt.due_at
    assert types(port) == [PromptEvent.ISSUED, PromptEvent.OVERDUE]
    assert port.events[-1].event.data["escalated_to"] == "supervisor"
    escalation = port.alerts[-1]
    assert escalation.reason == "overdue"
    assert [(r.id, r.name) for r in escalation.recipients] == [
        ("sv-1", "Sam Supervisor")
    ]
    assert escalation.subject.startswith("[OVERDUE] ")


async def test_a_completed_prompt_does_not_go_overdue(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")
    await complete_prompt(port, prompt.id, completed_by="cw-1", note=None, deps=deps)

    await fire(port, deps, step_of(port, prompt.id), prompt.id)

    assert port.prompts[prompt.id].overdue_at is None
    assert PromptEvent.OVERDUE not in types(port)


# --------------------------------------------------------------------------- #
# Completion
# --------------------------------------------------------------------------- #


async def test_a_person_completes_a_prompt_on_time(port, deps, episode_id, clock):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")
    clock.advance(timedelta(hours=2))

    done = await complete_prompt(
        port, prompt.id, completed_by="cw-1", note="called shelters", deps=deps
    )

    assert done == port.prompts[prompt.id]
    assert (done.status, done.completed_by, done.note) == (
        PromptStatus.COMPLETED,
        "cw-1",
        "called shelters",
    )
    assert done.completed_at == clock.now()
    assert prompt.id in port.cancelled, "its overdue step is retired"
    completed = port.events[-1].event
    assert completed.type == PromptEvent.COMPLETED
    assert (completed.data["completed_by"], completed.data["on_time"]) == ("cw-1", True)


async def test_a_prompt_completed_after_its_due_time_is_late(
    port, deps, episode_id, clock
):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")
    clock.set(prompt.due_at + timedelta(minutes=1))

    await complete_prompt(port, prompt.id, completed_by="cw-1", note=None, deps=deps)

    assert port.events[-1].event.data["on_time"] is False


async def test_the_screening_event_completes_the_screening_prompt(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id), deps)
    await handle_episode_event(port, located(episode_id), deps)
    screening, _ = await issue_first(port, deps, "trafficking_screening")
    debrief, _ = await issue_first(port, deps, "return_debrief")
    event = screened(episode_id)

    await handle_episode_event(port, event, deps)

    assert port.prompts[screening.id].completed_by == f"event:{event.id}"
    assert port.prompts[debrief.id].status is PromptStatus.OPEN
    assert types(port)[-1] == PromptEvent.COMPLETED


async def test_a_screening_before_its_prompt_is_issued_ends_that_series(
    port, deps, episode_id
):
    await handle_episode_event(port, reported(episode_id), deps)
    await handle_episode_event(port, located(episode_id), deps)

    await handle_episode_event(port, screened(episode_id), deps)

    [screening] = series_of(port, "trafficking_screening")
    assert screening.status is SeriesStatus.ENDED
    assert screening.ended_reason == "done before it was due"
    [debrief] = series_of(port, "return_debrief")
    assert debrief.status is SeriesStatus.ACTIVE
    assert port.events == []


async def test_a_prompt_of_another_county_is_not_found(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")

    with pytest.raises(PromptNotFoundError):
        await complete_prompt(
            port,
            prompt.id,
            completed_by="cw-1",
            note=None,
            deps=deps,
            in_scope=lambda county: county == "MO-510",
        )
    assert port.prompts[prompt.id].status is PromptStatus.OPEN


async def test_an_unknown_prompt_is_not_found(port, deps):
    with pytest.raises(PromptNotFoundError):
        await complete_prompt(port, new_id(), completed_by="cw-1", note=None, deps=deps)


async def test_completing_a_prompt_not_open_is_refused(port, deps, episode_id):
    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "document_search_efforts")
    await complete_prompt(port, prompt.id, completed_by="cw-1", note=None, deps=deps)
    emitted = len(port.events)

    with pytest.raises(PromptNotOpenError, match="the prompt is completed"):
        await complete_prompt(
            port, prompt.id, completed_by="cw-2", note=None, deps=deps
        )
    assert port.prompts[prompt.id].completed_by == "cw-1"
    assert len(port.events) == emitted


async def test_an_overdue_escalation_to_a_schedule_pages_whoever_covers_it(
    port, deps, episode_id
):
    """The notifier's covers (mfc.schedules.v1) reach followup's escalations too."""
    from uuid import uuid4

    from followup.handlers import apply_schedule_event
    from rules import on_call
    from shared.events import CloudEvent
    from shared.published import OverrideAdded, OverrideRemoved, ScheduleEvent

    await handle_episode_event(port, reported(episode_id), deps)
    prompt, _ = await issue_first(port, deps, "supervisor_review")
    managers = deps.ctx.policy.document.schedules["oncall-managers"]
    rostered = on_call(managers, prompt.due_at)
    cover = "oncall-b" if rostered == "oncall-a" else "oncall-a"
    added = OverrideAdded(
        override_id=uuid4(),
        schedule="oncall-managers",
        contact=cover,
        start=prompt.due_at - DAY,
        end=prompt.due_at + DAY,
        reason="sick day",
        added_by="adm-1",
        added_at=START,
    )

    def event(type_, data) -> CloudEvent:
        return CloudEvent.new(
            type=type_,
            source="test/notifier",
            subject="oncall-managers",
            data=data.model_dump(mode="json"),
            time=START,
        )

    await apply_schedule_event(port, event(ScheduleEvent.OVERRIDE_ADDED, added))
    await apply_schedule_event(port, event(ScheduleEvent.OVERRIDE_ADDED, added))
    await fire(port, deps, step_of(port, prompt.id), prompt.id)
    assert [r.id for r in port.alerts[-1].recipients] == [cover]

    removed = OverrideRemoved(
        **added.model_dump(), removed_by="adm-1", removed_at=START, removal_reason=None
    )
    await apply_schedule_event(port, event(ScheduleEvent.OVERRIDE_REMOVED, removed))
    assert await port.covers_at(prompt.due_at) == {}
