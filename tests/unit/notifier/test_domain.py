"""The notifier's pure decisions: what it keeps of an episode as events add to it,
which obligations open, what a notice and an acknowledgement do, what events say."""

from dataclasses import replace
from datetime import timedelta
from itertools import count
from uuid import UUID

from notifier.domain import acks, messages, steps
from notifier.domain import obligations as decide
from notifier.domain.model import (
    EpisodeRecord,
    EpisodeStatus,
    Obligation,
    OpenObligation,
)
from shared.events import (
    EpisodeLocatedData,
    EpisodeReported,
    EpisodeUpdatedData,
    NotificationRecordedData,
    ScreeningCompletedData,
)
from shared.policy import ClockStart, Trigger
from tests.unit.notifier.builders import POLICY, START, H, reported

DEFAULTS = POLICY.document.defaults


def episode(county: str = "FL-086", **overrides) -> EpisodeRecord:
    event = reported((UUID(int=1), county), **overrides)
    return decide.reported_episode(event.data_as(EpisodeReported))


def update(**data) -> EpisodeUpdatedData:
    return EpisodeUpdatedData.model_validate(data)


def ids():
    numbers = count(1)
    return lambda: UUID(int=next(numbers))


def test_a_report_is_kept_with_initials_facts_flags_and_clocks():
    kept = episode()
    assert kept.child_initials == "J.T."
    assert kept.status is EpisodeStatus.MISSING
    assert kept.times[ClockStart.AGENCY_LEARNED_AT] == START
    assert kept.facts.flags is not None
    assert kept.facts.flags["suicidal_tendencies"] is False
    assert not kept.facts.facts.endangered


def test_an_update_merges_endangerment_flags_over_those_known():
    kept = episode().facts
    learned = decide.learn(kept, update(endangerments={"pregnant": True}))
    assert learned.flags == {**(kept.flags or {}), "pregnant": True}
    assert learned.facts.endangered
    cleared = decide.learn(learned, update(endangerments={"pregnant": False}))
    assert not cleared.facts.endangered


def test_an_endangerment_known_before_flags_were_kept_stays_known():
    old_row = replace(
        episode().facts,
        flags=None,
        facts=episode().facts.facts.model_copy(update={"endangered": True}),
    )
    learned = decide.learn(old_row, update(endangerments={"pregnant": False}))
    assert learned.facts.endangered
    assert learned.flags == {"pregnant": False}


def test_an_update_may_say_the_child_is_an_indian_child():
    kept = episode().facts
    assert decide.learn(kept, update(child={"indian_child": True})).facts.indian_child
    unknown = decide.learn(kept, update(child={"indian_child": "unknown"}))
    assert unknown.facts.indian_child is None
    assert not decide.changes_facts(update(note="seen at the mall"))
    assert decide.changes_facts(update(child={"indian_child": "unknown"}))


def test_located_and_screening_start_their_clocks():
    located = decide.on_located(
        episode(),
        EpisodeLocatedData(located_at=START + H, location_type="home"),
    )
    assert located.status is EpisodeStatus.LOCATED
    assert located.times[ClockStart.LOCATED_AT] == START + H
    screened = decide.on_screening(
        located,
        ScreeningCompletedData(
            completed_at=START + 2 * H, trafficking_indicated=True, screened_by="cw"
        ),
    )
    assert screened.facts.facts.trafficking_indicated is True
    assert screened.times[ClockStart.SCREENING_COMPLETED_AT] == START + 2 * H
    assert screened.status is EpisodeStatus.LOCATED


def test_the_rules_open_with_their_timing_frozen_from_the_policy():
    opened = decide.to_open(
        POLICY, episode(), Trigger.REPORTED, now=START, new_id=ids()
    )
    by_kind = {o.rule.id: o for o in opened}
    assert set(by_kind) == {"law_enforcement_report", "ncmec_report"}
    le = by_kind["law_enforcement_report"]
    assert (le.id, le.jurisdiction, le.opened_by) == (UUID(int=1), "FL", "reported")
    assert le.due_at == START + 3 * H  # discovered an hour before, due in 4 h
    assert le.reminders == tuple(le.rule.reminders or DEFAULTS.reminders)
    assert (le.snooze, le.breach_repeat) == (DEFAULTS.snooze, DEFAULTS.breach_repeat)
    assert steps.first_step(le.timing()).fire_at == START


def test_a_rule_an_update_makes_apply_is_due_from_when_it_was_learned():
    endangered = replace(
        episode(),
        facts=decide.learn(
            episode().facts, update(endangerments={"suicidal_tendencies": True})
        ),
    )
    learned = START + 5 * H
    opened = decide.to_open(
        POLICY, endangered, Trigger.REPORTED, now=learned, learned_at=learned
    )
    [immediate] = [o for o in opened if o.rule.id == "law_enforcement_report_immediate"]
    assert (immediate.due_at, immediate.opened_by) == (learned + H, "update")


def notice(recipient: str, **data) -> NotificationRecordedData:
    return NotificationRecordedData.model_validate(
        {
            "recipient": recipient,
            "method": "online",
            "notified_at": START + 30 * H,
            "notified_by": "cw",
            **data,
        }
    )


def open_obligations(county: str):
    kept = episode(county)
    return kept, [
        OpenObligation.of(o)
        for o in decide.to_open(POLICY, kept, Trigger.REPORTED, now=START)
    ]


def test_a_notice_satisfies_what_it_answers_late_or_on_time():
    kept, waiting = open_obligations("WA-033")
    [outcome] = decide.on_notice(waiting, notice("ncmec"), kept.times)
    assert outcome.obligation.kind == "ncmec_report"
    assert (outcome.satisfied, outcome.on_time) == (True, False)  # due in 24 h


def test_a_notice_before_its_clock_or_lacking_the_reference_waits_or_is_ignored():
    kept, waiting = open_obligations("NC-063")
    [outcome] = decide.on_notice(waiting, notice("ncmec"), kept.times)
    assert not outcome.satisfied
    assert "reference_number" in (outcome.waiting_reason or "")
    too_early = notice("ncmec", notified_at=START - 4 * H, reference_number="N")
    assert decide.on_notice(waiting, too_early, kept.times) == []


def test_closing_makes_every_open_duty_moot():
    kept, waiting = open_obligations("WA-033")
    closing = decide.on_closed(kept, waiting, "home")
    assert closing.episode.status is EpisodeStatus.CLOSED
    assert closing.moot == tuple(waiting)
    assert closing.reason == "episode closed: home"


def obligation(**overrides) -> Obligation:
    [new, *_] = decide.to_open(POLICY, episode("WA-033"), Trigger.REPORTED, now=START)
    values = {
        "id": new.id,
        "episode_id": new.episode_id,
        "county_code": new.county_code,
        "jurisdiction": new.jurisdiction,
        "kind": new.rule.id,
        "title": new.rule.title,
        "status": "open",
        "opened_at": new.opened_at,
        "due_at": new.due_at,
        "waiting_reason": None,
        "child_initials": "J.T.",
        "staff": {},
        "chain": new.chain,
        "reminders": new.reminders,
        "breach_repeat": new.breach_repeat,
        "snooze": None,
        "snoozed_until": None,
        "snoozed_level": None,
        **overrides,
    }
    return Obligation(**values)


def test_an_ack_snoozes_its_level_for_the_snooze():
    now = START + H
    snoozing = acks.snooze(obligation(), 1, defaults=DEFAULTS, now=now)
    assert snoozing == acks.Snoozing(now + DEFAULTS.snooze, 1)
    frozen = obligation(snooze=timedelta(minutes=20))
    assert acks.snooze(frozen, 0, defaults=DEFAULTS, now=now) == acks.Snoozing(
        now + timedelta(minutes=20), 0
    )


def test_an_ack_never_lowers_the_level_an_earlier_one_quiets():
    now = START + H
    earlier = obligation(snoozed_until=now + H, snoozed_level=2)
    assert acks.snooze(earlier, 0, defaults=DEFAULTS, now=now).level == 2
    ended = obligation(snoozed_until=now, snoozed_level=2)
    assert acks.snooze(ended, 0, defaults=DEFAULTS, now=now).level == 0


def test_an_ack_of_a_closed_duty_snoozes_nothing():
    closed = obligation(status="satisfied")
    assert acks.snooze(closed, 0, defaults=DEFAULTS, now=START) is None


def test_the_end_of_a_snooze_before_the_deadline_moves_the_pending_step():
    o = obligation()
    timing = o.timing(DEFAULTS)
    fired = steps.fire(timing, steps.first_step(timing), o.snoozed(), START)
    pending = fired.following  # the first reminder, in 2 h
    assert pending is not None
    moved = acks.resume(o, pending, acks.Snoozing(START + H, 0), defaults=DEFAULTS)
    assert moved is not None
    assert (moved.fire_at, moved.key) == (START + H, "resume:20261102T190000")
    late = acks.Snoozing(o.due_at + H, 0)
    assert acks.resume(o, pending, late, defaults=DEFAULTS) is None


def test_only_reminders_escalations_and_the_first_breach_say_something():
    o = obligation()
    assert messages.step(o, steps.Firing(0, steps.OPENED), None) is None
    assert messages.step(o, steps.Firing(None, steps.REMINDED), None) is None
    assert messages.step(o, steps.Firing(2, steps.BREACHED), None) is None
    said = messages.step(o, steps.Firing(2, steps.BREACHED, first_breach=True), None)
    assert said is not None
    event_type, data = said
    assert (event_type, data.level, data.alert_id) == (
        messages.STEP_EVENTS[steps.BREACHED],
        2,
        None,
    )
