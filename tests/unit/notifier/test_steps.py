"""The escalation steps as pure rules: the plan, one pending step at a time,
acknowledgements that quiet a level, and the re-alert when a snooze ends."""

from datetime import UTC, datetime, timedelta

from notifier.domain.steps import (
    Pending,
    Snooze,
    Timing,
    after_ack,
    fire,
    first_step,
    level_at,
    plan,
    responsible_level,
)
from shared.policy import Chain, default_policy_path, load_policy

POLICY = load_policy(default_policy_path())
LEARNED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
AWAKE = Snooze(None, None)
CHAIN = Chain.model_validate(
    {
        "levels": [
            {"name": "caseworker", "notify": ["caseworker"], "timeout": "1h"},
            {"name": "supervisor", "notify": ["supervisor"], "timeout": "1h"},
            {"name": "manager", "notify": ["schedule:managers"]},
        ]
    }
)
TIMING = Timing(LEARNED, LEARNED + 3 * H, CHAIN, (30 * M,), H)


def run(
    t: Timing, snooze: Snooze, until: datetime
) -> list[tuple[str, int | None, datetime]]:
    """Fire the one pending step again and again, each at its own time, up to
    ``until``: (key, level alerted or None when quiet, time). ``snooze`` is an ack
    of the opening alert, so it applies from the second step on."""
    pending, fired = first_step(t), []
    while pending.fire_at <= until:
        acked = snooze if fired else AWAKE
        firing = fire(t, pending, acked, pending.fire_at)
        fired.append((pending.key, firing.level, pending.fire_at))
        assert firing.following is not None
        pending = firing.following
    return fired


def test_steps_alert_escalate_remind_and_breach_in_time():
    chain = POLICY.chain("default")  # caseworker 4h, supervisor 8h, on-call
    opened = LEARNED
    steps = plan(Timing(opened, opened + 24 * H, chain, (2 * H, 12 * H, 20 * H), H))
    assert sorted((s.key, s.fire_at - opened) for s in steps) == sorted(
        [
            ("escalate:0", timedelta()),
            ("escalate:1", 4 * H),
            ("escalate:2", 12 * H),
            ("remind:0", 2 * H),
            ("remind:1", 12 * H),
            ("remind:2", 20 * H),
            ("breach:0", 24 * H),
        ]
    )
    assert [s.fire_at for s in steps] == sorted(s.fire_at for s in steps)
    assert [level_at(chain, opened, opened + h * H) for h in (0, 3, 4, 11, 12, 30)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_steps_past_the_due_time_are_left_to_the_breach():
    chain = POLICY.chain("default")
    steps = plan(Timing(LEARNED, LEARNED + 2 * H, chain, (H, 3 * H), H))
    assert [s.key for s in steps] == ["escalate:0", "remind:0", "breach:0"]


def test_one_pending_step_walks_the_plan_then_repeats_the_breach():
    assert run(TIMING, AWAKE, LEARNED + 5 * H) == [
        ("escalate:0", 0, LEARNED),
        ("remind:0", 0, LEARNED + 30 * M),
        ("escalate:1", 1, LEARNED + H),
        ("escalate:2", 2, LEARNED + 2 * H),
        ("breach:0", 2, LEARNED + 3 * H),
        ("breach:1", 2, LEARNED + 4 * H),
        ("breach:2", 2, LEARNED + 5 * H),
    ]


def test_the_first_breach_is_flagged_and_the_repeat_counts_from_the_late_firing():
    late = LEARNED + 3 * H + 7 * M
    firing = fire(TIMING, Pending("breach:0", "breach", LEARNED + 3 * H), AWAKE, late)
    assert firing.first_breach
    assert firing.following == Pending("breach:1", "breach", late + H)


def test_a_quiet_step_fires_when_the_snooze_ends_under_its_own_key():
    # The caseworker acked the opening alert with a 90-minute snooze.
    snooze = Snooze(LEARNED + 90 * M, 0)
    fired = run(TIMING, snooze, LEARNED + 2 * H)
    assert fired == [
        ("escalate:0", 0, LEARNED),
        ("remind:0", None, LEARNED + 30 * M),  # quiet: acked
        ("escalate:1", 1, LEARNED + H),  # escalation goes on
        ("remind:0", 1, LEARNED + 90 * M),  # the snooze ended: the level in charge
        ("escalate:2", 2, LEARNED + 2 * H),
    ]


def test_the_end_of_a_snooze_before_the_deadline_alerts_again():
    opened = first_step(TIMING)
    after_open = fire(TIMING, opened, AWAKE, LEARNED).following
    assert after_open is not None
    assert after_open.key == "remind:0"
    # Acked at 5 min with a 20-minute snooze: the reminder at 30 min would come
    # after the snooze; the end of the snooze comes first.
    moved = after_ack(TIMING, after_open, LEARNED + 25 * M)
    assert moved is not None
    assert (moved.key, moved.fire_at) == ("resume:20260302T092500", LEARNED + 25 * M)
    resumed = fire(TIMING, moved, Snooze(LEARNED + 25 * M, 0), LEARNED + 25 * M)
    assert resumed.level == 0
    assert resumed.following is not None
    assert (resumed.following.key, resumed.following.fire_at) == (
        "remind:0",
        LEARNED + 30 * M,
    )


def test_a_snooze_ending_after_the_deadline_leaves_the_breach_to_speak():
    pending = Pending("escalate:2", "escalate", LEARNED + 2 * H, after=2)
    assert after_ack(TIMING, pending, LEARNED + 3 * H) is None
    breach = Pending("breach:1", "breach", LEARNED + 4 * H)
    assert after_ack(TIMING, breach, LEARNED + 3 * H + 20 * M) is None


def test_an_acked_breach_repeat_waits_for_the_snooze():
    snooze = Snooze(LEARNED + 5 * H + 10 * M, 2)
    firing = fire(
        TIMING, Pending("breach:2", "breach", LEARNED + 5 * H), snooze, LEARNED + 5 * H
    )
    assert firing.level is None
    assert firing.following == Pending("breach:2", "breach", LEARNED + 5 * H + 10 * M)
    # The first breach is never quiet: the deadline passing always pages.
    first = fire(
        TIMING, Pending("breach:0", "breach", LEARNED + 3 * H), snooze, LEARNED + 3 * H
    )
    assert first.level == 2
    assert first.first_breach


def test_a_pending_row_keeps_its_place_in_the_plan_across_a_restart():
    pending = Pending("remind:0", "remind", LEARNED + 90 * M, after=2)
    again = Pending.of(pending.key, pending.kind, pending.fire_at, pending.payload())
    assert again == pending
    # Rows written before the place was kept: the step before it in the plan.
    legacy = fire(
        TIMING, Pending("escalate:1", "escalate", LEARNED + H), AWAKE, LEARNED + H
    )
    assert legacy.following is not None
    assert legacy.following.key == "escalate:2"


def test_who_must_act_is_the_level_in_charge_and_the_top_once_breached():
    chain = Chain.model_validate(
        {
            "levels": [
                {"name": "caseworker", "notify": ["caseworker"], "timeout": "4h"},
                {"name": "supervisor", "notify": ["supervisor"], "timeout": "8h"},
                {"name": "on-call", "notify": ["schedule:managers"]},
            ]
        }
    )
    opened = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert responsible_level(chain, opened, breached=False, at=opened) == 0
    assert responsible_level(chain, opened, breached=False, at=opened + 5 * H) == 1
    assert responsible_level(chain, opened, breached=True, at=opened + 5 * H) == 2
