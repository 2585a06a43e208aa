"""On-call schedules changed while the system runs: overrides added at runtime (a
sick day, a shift swap) on top of the policy file's rotation. Pure: the policy, the
overrides in force and the time in; what is refused, who covers, and the timeline
of who is on call out."""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from rules import on_call
from shared.policy import Policy, Schedule

START_GRACE = timedelta(minutes=5)
"""An override may start this long before now (the time it took to type it in);
earlier is the past, which an override cannot change."""
LONGEST = timedelta(days=92)
"""A longer override is a change of rotation: edit the policy file."""


@dataclass(frozen=True)
class OverrideDraft:
    """What a person asks for: who covers, from when to when, and why."""

    contact: str
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class RuntimeOverride:
    id: UUID
    schedule: str
    contact: str
    start: datetime
    end: datetime
    reason: str
    created_by: str
    created_at: datetime

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


class OverrideRefusedError(ValueError):
    """A new override that cannot be: ``field`` at fault, ``conflict`` if it
    overlaps another (the caller answers 409, else 422)."""

    def __init__(self, field: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


def check_new(
    policy: Policy,
    schedule: str,
    draft: OverrideDraft,
    *,
    existing: Sequence[RuntimeOverride],
    now: datetime,
) -> None:
    """Refuse an override that names nobody the policy knows, is backwards, in the
    past or too long, or overlaps one in force on the same schedule (the file's or
    a runtime one): two people covering one hour is a mistake to settle first.

    Raises:
        OverrideRefusedError: naming the field and what to do instead.
    """
    contact, start, end = draft.contact, draft.start, draft.end
    contacts = policy.document.contacts
    if contact not in contacts:
        known = ", ".join(sorted(contacts)) or "none"
        raise OverrideRefusedError(
            "contact", f"unknown contact {contact!r}; the policy's contacts: {known}"
        )
    if end <= start:
        raise OverrideRefusedError("end", "must be after start")
    if end <= now:
        raise OverrideRefusedError(
            "end", "is in the past: an override changes who is paged from now on"
        )
    if start < now - START_GRACE:
        raise OverrideRefusedError(
            "start", "is in the past: start the override now or later"
        )
    if end - start > LONGEST:
        raise OverrideRefusedError(
            "end",
            f"makes the override longer than {LONGEST.days} days: change the "
            "rotation in the policy file instead",
        )
    for other in existing:
        if other.schedule == schedule and other.start < end and start < other.end:
            raise OverrideRefusedError(
                "start",
                f"overlaps override {other.id} ({other.contact}, "
                f"{other.start.isoformat()} to {other.end.isoformat()}): remove "
                "that one first, or choose another time",
                conflict=True,
            )
    for index, fixed in enumerate(policy.document.schedules[schedule].overrides):
        if fixed.start < end and start < fixed.end:
            raise OverrideRefusedError(
                "start",
                f"overlaps the policy file's override {index + 1} of {schedule!r} "
                f"({fixed.contact}, {fixed.start.isoformat()} to "
                f"{fixed.end.isoformat()}): choose another time",
                conflict=True,
            )


def covering(overrides: Iterable[RuntimeOverride], at: datetime) -> dict[str, str]:
    """Schedule -> the contact a runtime override puts on call at ``at``."""
    return {o.schedule: o.contact for o in overrides if o.covers(at)}


@dataclass(frozen=True)
class Shift:
    """A stretch of time with one person on call, and why."""

    start: datetime
    end: datetime
    contact: str
    override: RuntimeOverride | None = None
    """The runtime override that put them there, if one did."""
    from_file: bool = False
    """An override in the policy file put them there."""


def timeline(
    schedule: Schedule,
    overrides: Sequence[RuntimeOverride],
    start: datetime,
    end: datetime,
) -> list[Shift]:
    """Who is on call from ``start`` to ``end``: the rotation's turns, with the
    file's and the runtime overrides cut in; a person's unbroken stretch is one
    shift. Every moment in UTC (a policy may write its times with an offset)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    cuts = {start, end}
    first = schedule.start.astimezone(UTC)
    turn = first + schedule.shift * ((start - first) // schedule.shift)
    while turn < end:
        cuts.add(max(turn, start))
        turn += schedule.shift
    windows = [(o.start, o.end) for o in schedule.overrides]
    windows += [(o.start, o.end) for o in overrides]
    windows = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in windows]
    for window in windows:
        cuts.update(t for t in window if start < t < end)
    points = sorted(cuts)
    shifts: list[Shift] = []
    for begin, finish in itertools.pairwise(points):
        shift = _who(schedule, overrides, begin, finish)
        last = shifts[-1] if shifts else None
        if last and (last.contact, last.override, last.from_file) == (
            shift.contact,
            shift.override,
            shift.from_file,
        ):
            shifts[-1] = Shift(
                last.start, finish, last.contact, last.override, last.from_file
            )
        else:
            shifts.append(shift)
    return shifts


def _who(
    schedule: Schedule,
    overrides: Sequence[RuntimeOverride],
    begin: datetime,
    finish: datetime,
) -> Shift:
    for override in overrides:
        if override.covers(begin):
            return Shift(begin, finish, override.contact, override=override)
    contact = on_call(schedule, begin)
    from_file = any(o.start <= begin < o.end for o in schedule.overrides)
    return Shift(begin, finish, contact, from_file=from_file)
