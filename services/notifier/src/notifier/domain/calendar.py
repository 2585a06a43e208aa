"""A schedule as an iCalendar feed (RFC 5545) that people subscribe to in their
calendar apps: one event per shift, overrides included, with a stable UID so an app
updates a shift in place when an override changes it."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Event

from notifier.domain.schedules import Shift
from shared.policy import Contact

PRODID = "-//missing-from-care//notifier on-call//EN"
REFRESH = timedelta(minutes=15)
"""How often a subscribed app should fetch the feed again (an override is news)."""


def ics(
    schedule: str,
    shifts: Sequence[Shift],
    contacts: Mapping[str, Contact],
    now: datetime,
    *,
    reasons: bool = True,
) -> bytes:
    """The feed of ``schedule``'s shifts: who is on call, and why if by override
    (``reasons``: the override's reason and author; not in the keyed feed, whose
    address may travel further than the people signed in)."""
    calendar = Calendar.new(
        prodid=PRODID,
        name=f"On call: {schedule}",
        description=f"Who is on call in the {schedule} schedule (missing-from-care)",
        refresh_interval=REFRESH,
    )
    for shift in shifts:
        calendar.add_component(_event(schedule, shift, contacts, now, reasons))
    return bytes(calendar.to_ical())


def _event(
    schedule: str,
    shift: Shift,
    contacts: Mapping[str, Contact],
    now: datetime,
    reasons: bool,
) -> Event:
    contact = contacts.get(shift.contact)
    name = contact.name if contact else shift.contact
    description = f"{name} is on call for {schedule}."
    if shift.override is not None and not reasons:
        description += "\nCover (an override)."
    elif shift.override is not None:
        o = shift.override
        description += (
            f"\nOverride: {o.reason} (added by {o.created_by} at "
            f"{o.created_at:%Y-%m-%d %H:%M} UTC)"
        )
    elif shift.from_file:
        description += "\nOverride in the policy file."
    return Event.new(
        uid=f"{schedule}.{shift.start:%Y%m%dT%H%M%SZ}@missing-from-care",
        start=shift.start,
        end=shift.end,
        stamp=now,
        summary=f"On call ({schedule}): {name}"
        + (" [override]" if shift.override or shift.from_file else ""),
        description=description,
    )
