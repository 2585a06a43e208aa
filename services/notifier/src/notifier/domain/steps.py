"""When an obligation alerts whom: its escalation steps as pure rules.

An obligation keeps one pending timer: its next step. Firing a step decides the alert
(which level, why, or quiet because of an acknowledgement) and the step that follows,
from the timing frozen on the obligation when it opened. No I/O, no clock.

The plan (``plan``): level 0 is alerted at once, each next level when the one before
has had its timeout; reminders re-alert the level in charge; at the due time the
breach alerts the top of the chain and repeats every ``breach_repeat`` until the
notice is recorded. Steps after the due time are left out: from then on the breach
speaks.

Acknowledgements (``is_snoozed``): an ack quiets the level it was sent to and those
below until its snooze ends; escalation to a higher level goes on. A step that falls
quiet is deferred to the end of the snooze and fires then under its own key; if none
fell quiet, the end of a snooze that comes before the deadline re-alerts anyway
(``resume:``), since acknowledged-and-forgotten is how on-call tools fail.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.policy import Chain

OPENED, ESCALATED, REMINDED, BREACHED = "opened", "escalated", "reminded", "breached"


@dataclass(frozen=True)
class Timing:
    """What an obligation's steps depend on, frozen when it opened."""

    opened_at: datetime
    due_at: datetime
    chain: Chain
    reminders: tuple[timedelta, ...]
    breach_repeat: timedelta


@dataclass(frozen=True)
class Snooze:
    until: datetime | None
    level: int | None
    """The highest level the acks quiet; None (old rows): every level."""


@dataclass(frozen=True)
class Step:
    key: str
    kind: str  # escalate | remind | breach
    fire_at: datetime
    level: int | None = None


@dataclass(frozen=True)
class Deferred:
    """A step that fell quiet, waiting for the snooze to end."""

    key: str
    at: datetime


@dataclass(frozen=True)
class Pending:
    """An obligation's pending timer as the rules read it. ``after`` is the index in
    the plan of the last plan step done; ``deferred`` a quiet step carried along."""

    key: str
    kind: str
    fire_at: datetime
    after: int | None = None
    deferred: Deferred | None = None

    def payload(self) -> dict[str, Any]:
        """How the timer row keeps ``after`` and ``deferred``."""
        data: dict[str, Any] = {}
        if self.after is not None:
            data["after"] = self.after
        if self.deferred is not None:
            data["deferred"] = [self.deferred.key, self.deferred.at.isoformat()]
        return data

    @classmethod
    def of(
        cls, key: str, kind: str, fire_at: datetime, payload: Mapping[str, Any]
    ) -> "Pending":
        deferred = payload.get("deferred")
        return cls(
            key,
            kind,
            fire_at,
            payload.get("after"),
            Deferred(deferred[0], datetime.fromisoformat(deferred[1]))
            if deferred
            else None,
        )


@dataclass(frozen=True)
class Firing:
    """What firing a step does: alert ``level`` for ``reason`` (or nothing, when
    ``level`` is None), whether this is the breach, and the step that follows."""

    level: int | None
    reason: str
    first_breach: bool = False
    following: Pending | None = field(default=None)


def plan(t: Timing) -> list[Step]:
    """Every step before the breach, and the breach, in firing order."""
    steps = [Step("escalate:0", "escalate", t.opened_at, 0)]
    start = t.opened_at
    for level, previous in enumerate(t.chain.levels[:-1], start=1):
        assert previous.timeout is not None  # validated by the policy loader
        start += previous.timeout
        if start < t.due_at:
            steps.append(Step(f"escalate:{level}", "escalate", start, level))
    for index, after in enumerate(t.reminders):
        at = t.opened_at + after
        if t.opened_at < at < t.due_at:
            steps.append(Step(f"remind:{index}", "remind", at))
    steps.sort(key=lambda s: s.fire_at)  # stable: escalation before a reminder
    steps.append(Step("breach:0", "breach", t.due_at))
    return steps


def first_step(t: Timing) -> Pending:
    """The one timer an obligation schedules when it opens."""
    step = plan(t)[0]
    return Pending(step.key, step.kind, step.fire_at, after=-1)


def level_at(chain: Chain, opened_at: datetime, at: datetime) -> int:
    """The level in charge at a moment (the last one whose turn has come)."""
    level, start = 0, opened_at
    for index, current in enumerate(chain.levels[:-1]):
        assert current.timeout is not None
        start += current.timeout
        if at >= start:
            level = index + 1
    return level


def responsible_level(
    chain: Chain, opened_at: datetime, *, breached: bool, at: datetime
) -> int:
    """The level that must act at a moment: the top of the chain once the deadline
    has passed (the breach pages it), otherwise the level in charge by now."""
    return len(chain.levels) - 1 if breached else level_at(chain, opened_at, at)


def is_snoozed(
    level: int,
    snoozed_level: int | None,
    snoozed_until: datetime | None,
    now: datetime,
) -> bool:
    """Whether an ack quiets a step for ``level``: an ack quiets the level it was
    sent to and those below, until the snooze ends; escalation to a higher level
    goes on (the duty is still undone). Old acks without a level quiet all."""
    if snoozed_until is None or snoozed_until <= now:
        return False
    return snoozed_level is None or level <= snoozed_level


def fire(t: Timing, pending: Pending, snooze: Snooze, now: datetime) -> Firing:
    """Fire an obligation's pending step at ``now``."""
    if pending.key.startswith("breach:"):
        return _fire_breach(t, pending, snooze, now)
    steps = plan(t)
    after = _after(steps, pending)
    is_plan_step = steps[after + 1].key == pending.key
    done = after + 1 if is_plan_step else after
    if pending.kind == "escalate":
        level = int(pending.key.split(":")[1])
        reason = OPENED if level == 0 else ESCALATED
    else:
        level, reason = level_at(t.chain, t.opened_at, now), REMINDED
    carried = pending.deferred
    if is_snoozed(level, snooze.level, snooze.until, now):
        assert snooze.until is not None
        if carried is None or carried.key.startswith("resume:"):
            carried = Deferred(pending.key, snooze.until)
        return Firing(None, reason, following=_following(steps, done, carried))
    return Firing(level, reason, following=_following(steps, done, carried))


def _fire_breach(t: Timing, pending: Pending, snooze: Snooze, now: datetime) -> Firing:
    repeat = int(pending.key.split(":")[1])
    top = len(t.chain.levels) - 1
    if repeat > 0 and is_snoozed(top, snooze.level, snooze.until, now):
        assert snooze.until is not None
        # The top of the chain took it: the repeat waits for the snooze to end.
        return Firing(
            None, BREACHED, following=Pending(pending.key, "breach", snooze.until)
        )
    following = Pending(f"breach:{repeat + 1}", "breach", now + t.breach_repeat)
    return Firing(top, BREACHED, first_breach=repeat == 0, following=following)


def after_ack(t: Timing, pending: Pending, snoozed_until: datetime) -> Pending | None:
    """Where the pending step goes when an ack snoozes until ``snoozed_until``:
    the end of the snooze re-alerts if it comes before the deadline; None leaves the
    step where it is."""
    if pending.key.startswith("breach:") or snoozed_until >= t.due_at:
        return None
    steps = plan(t)
    after = _after(steps, pending)
    if steps[after + 1].key != pending.key:  # the pending step is a deferred one
        return _following(steps, after, Deferred(pending.key, snoozed_until))
    carried = pending.deferred
    key = carried.key if carried else f"resume:{snoozed_until:%Y%m%dT%H%M%S}"
    return _following(steps, after, Deferred(key, snoozed_until))


def _following(steps: list[Step], done: int, deferred: Deferred | None) -> Pending:
    """The step after plan step ``done``: the next in the plan, or a deferred step
    if its snooze ends first."""
    following = steps[done + 1]
    if deferred is not None and deferred.at < following.fire_at:
        return Pending(deferred.key, "remind", deferred.at, after=done)
    return Pending(
        following.key, following.kind, following.fire_at, after=done, deferred=deferred
    )


def _after(steps: list[Step], pending: Pending) -> int:
    """The index of the last plan step done before ``pending``: kept on the timer,
    or (rows from before it was kept) the step before the pending one in the plan."""
    if pending.after is not None:
        return pending.after
    keys = [s.key for s in steps]
    if pending.key in keys:
        return keys.index(pending.key) - 1
    return max(sum(s.fire_at <= pending.fire_at for s in steps[:-1]) - 1, -1)
