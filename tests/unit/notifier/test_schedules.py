"""On-call overrides added at runtime: the pure rules (refusals, who covers, the
timeline of shifts, the calendar feed) and the handlers against the in-memory port,
down to who the next escalation step pages."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from icalendar import Calendar

from notifier.domain.calendar import ics
from notifier.domain.schedules import (
    OverrideDraft,
    OverrideRefusedError,
    RuntimeOverride,
    check_new,
    covering,
    timeline,
)
from notifier.handlers import (
    OverrideNotFoundError,
    add_override,
    apply_episode_event,
    remove_override,
)
from notifier.ports import FakeNotifier
from rules import on_call
from shared.clock import ManualClock
from shared.policy import parse_policy
from shared.published import ScheduleEvent
from tests.unit.notifier.builders import POLICY, START, H, make_deps, reported
from tests.unit.notifier.test_handlers import run_until

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
D = timedelta(days=1)

TOML = b"""
version = "t"
[contacts.a]
name = "Alex"
[contacts.b]
name = "Bo"
[contacts.c]
name = "Cy"
[schedules.desk]
members = ["a", "b"]
start = "2026-11-30T09:00:00Z"
shift = "1d"
overrides = [{ start = "2026-12-05T09:00:00Z", end = "2026-12-06T09:00:00Z", contact = "c" }]
[chains.default]
levels = [{ name = "desk", notify = ["schedule:desk"] }]
[jurisdictions.federal]
"""
DESK = parse_policy(TOML)


def runtime(contact: str, start: datetime, end: datetime) -> RuntimeOverride:
    return RuntimeOverride(uuid4(), "desk", contact, start, end, "sick day", "adm", NOW)


def draft(contact="c", start=NOW + H, end=NOW + 5 * H) -> OverrideDraft:
    return OverrideDraft(contact, start, end, "sick day")


@pytest.mark.parametrize(
    ("asked", "field", "words"),
    [
        (
            draft(contact="zed"),
            "contact",
            "unknown contact 'zed'; the policy's contacts: a, b, c",
        ),
        (draft(start=NOW + 5 * H, end=NOW + H), "end", "must be after start"),
        (draft(start=NOW - 9 * H, end=NOW - H), "end", "in the past"),
        (draft(start=NOW - H, end=NOW + H), "start", "in the past"),
        (draft(end=NOW + 100 * D), "end", "longer than 92 days"),
    ],
)
def test_an_override_that_cannot_be_is_refused_naming_the_field(asked, field, words):
    with pytest.raises(OverrideRefusedError, match=words) as refused:
        check_new(DESK, "desk", asked, existing=[], now=NOW)
    assert refused.value.field == field
    assert not refused.value.conflict


def test_a_moment_ago_is_not_the_past():
    check_new(
        DESK, "desk", draft(start=NOW - timedelta(minutes=4)), existing=[], now=NOW
    )


def test_an_overlap_with_another_override_is_a_conflict_naming_it():
    other = runtime("b", NOW + 4 * H, NOW + 8 * H)
    with pytest.raises(OverrideRefusedError, match=str(other.id)) as refused:
        check_new(DESK, "desk", draft(), existing=[other], now=NOW)
    assert refused.value.conflict
    # Touching end to start is no overlap.
    check_new(DESK, "desk", draft(end=NOW + 4 * H), existing=[other], now=NOW)
    with pytest.raises(OverrideRefusedError, match="policy file's override 1") as fixed:
        check_new(
            DESK,
            "desk",
            draft(
                start=datetime(2026, 12, 5, 12, tzinfo=UTC),
                end=datetime(2026, 12, 5, 13, tzinfo=UTC),
            ),
            existing=[],
            now=NOW,
        )
    assert fixed.value.conflict


def test_the_timeline_cuts_overrides_into_the_rotation():
    schedule = DESK.document.schedules["desk"]
    sick = runtime("c", NOW + 2 * H, NOW + 6 * H)
    shifts = timeline(schedule, [sick], NOW, NOW + 4 * D)
    assert [(s.start, s.end, s.contact, s.override, s.from_file) for s in shifts] == [
        (NOW, NOW + 2 * H, "a", None, False),  # 2026-12-02 is a's turn (day 2)
        (NOW + 2 * H, NOW + 6 * H, "c", sick, False),
        (NOW + 6 * H, NOW + D, "a", None, False),
        (NOW + D, NOW + 2 * D, "b", None, False),
        (NOW + 2 * D, NOW + 3 * D, "a", None, False),
        (NOW + 3 * D, NOW + 4 * D, "c", None, True),  # the file's override
    ]
    assert covering([sick], NOW + 3 * H) == {"desk": "c"}
    assert covering([sick], NOW + 6 * H) == {}


def test_the_calendar_feed_has_a_shift_per_event_with_stable_uids():
    schedule = DESK.document.schedules["desk"]
    sick = runtime("c", NOW + 2 * H, NOW + 6 * H)
    body = ics(
        "desk",
        timeline(schedule, [sick], NOW, NOW + 2 * D),
        DESK.document.contacts,
        NOW,
    )
    parsed = Calendar.from_ical(body)
    events = list(parsed.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in events] == [
        "On call (desk): Alex",
        "On call (desk): Cy [override]",
        "On call (desk): Alex",
        "On call (desk): Bo",
    ]
    assert "sick day (added by adm" in str(events[1]["DESCRIPTION"])
    assert events[1].start == NOW + 2 * H
    assert events[1].end == NOW + 6 * H
    assert len({str(e["UID"]) for e in events}) == 4
    again = ics(
        "desk",
        timeline(schedule, [sick], NOW, NOW + 2 * D),
        DESK.document.contacts,
        NOW + H,
    )
    assert [str(e["UID"]) for e in Calendar.from_ical(again).walk("VEVENT")] == [
        str(e["UID"]) for e in events
    ]


async def test_adding_and_removing_an_override_is_written_to_the_trail():
    port, deps = FakeNotifier(), make_deps(ManualClock(START))
    other = (
        "oncall-b"
        if on_call(POLICY.document.schedules["oncall-managers"], START) == "oncall-a"
        else "oncall-a"
    )
    asked = OverrideDraft(other, START, START + 8 * H, "swap")
    added = await add_override(port, "oncall-managers", asked, by="adm-1", deps=deps)
    with pytest.raises(OverrideRefusedError):
        await add_override(port, "oncall-managers", asked, by="adm-1", deps=deps)
    removed = await remove_override(
        port, "oncall-managers", added.id, by="adm-2", reason="back", deps=deps
    )
    assert removed == added
    with pytest.raises(OverrideNotFoundError):
        await remove_override(
            port, "oncall-managers", added.id, by="adm-2", reason=None, deps=deps
        )
    [add_event, remove_event] = port.events
    assert add_event.event.type == ScheduleEvent.OVERRIDE_ADDED
    assert add_event.event.subject == "oncall-managers"
    assert add_event.event.data["contact"] == other
    assert add_event.event.data["added_by"] == "adm-1"
    assert remove_event.event.type == ScheduleEvent.OVERRIDE_REMOVED
    assert remove_event.event.data["removed_by"] == "adm-2"
    assert remove_event.event.data["removal_reason"] == "back"


async def test_an_override_added_while_a_duty_is_open_changes_who_its_next_step_pages():
    clock = ManualClock(START)
    port, deps = FakeNotifier(), make_deps(clock)
    await apply_episode_event(port, reported((uuid4(), "FL-086")), deps)
    managers = POLICY.document.schedules["oncall-managers"]
    rostered = on_call(managers, START + 12 * H)
    cover = "oncall-b" if rostered == "oncall-a" else "oncall-a"
    await add_override(
        port,
        "oncall-managers",
        OverrideDraft(cover, START + H, START + 2 * D, "sick day"),
        by="adm-1",
        deps=deps,
    )
    await run_until(port, deps, START + 24 * H)
    paged = {
        r.id
        for a in port.alerts
        if a.details.get("level_name") == "on-call manager"
        for r in a.recipients
    }
    assert paged == {cover}


def test_a_cover_naming_a_contact_since_removed_from_the_policy_is_ignored():
    """Else the whole firing batch would fail on the unknown contact, for ever."""
    from rules import resolve

    schedule = DESK.document.schedules["desk"]
    [person] = resolve(DESK, ["schedule:desk"], {}, NOW, {"desk": "gone"})
    assert person.id == on_call(schedule, NOW)
    [covered] = resolve(DESK, ["schedule:desk"], {}, NOW, {"desk": "c"})
    assert covered.id == "c"


def test_the_keyed_calendar_feed_leaves_out_why_and_who_added_a_cover():
    schedule = DESK.document.schedules["desk"]
    sick = runtime("c", NOW + 2 * H, NOW + 6 * H)
    shifts = timeline(schedule, [sick], NOW, NOW + D)
    keyed = ics("desk", shifts, DESK.document.contacts, NOW, reasons=False)
    assert b"sick day" not in keyed
    assert b"adm" not in keyed
    assert b"[override]" in keyed


async def test_an_override_already_over_cannot_be_removed():
    port, deps = FakeNotifier(), make_deps(ManualClock(START))
    asked = OverrideDraft("oncall-a", START, START + H, "swap")
    added = await add_override(port, "oncall-managers", asked, by="adm-1", deps=deps)
    deps.ctx.clock.set(START + 2 * H)  # type: ignore[attr-defined]
    with pytest.raises(OverrideNotFoundError):
        await remove_override(
            port, "oncall-managers", added.id, by="adm-1", reason=None, deps=deps
        )
