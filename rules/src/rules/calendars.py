"""Deadlines counted in working days (``due = "2 business days"``). Pure: the start is
passed in, and a calendar's holidays are computed, not looked up anywhere.

The count follows the usual rule for periods in days (e.g. Fed. R. Civ. P. 6(a)): the
day the clock starts does not count, whatever the hour; each following day that is a
weekday, not one of the state's public holidays and not a closure day of the agency
counts as one; the deadline is the end of the working day (``day_ends``, local time) on
the last day counted. Days are the calendar's local dates, so a clock started at 23:30
in Atlanta starts on that Atlanta date whatever UTC says, and a deadline across a
daylight-saving change still falls at 17:00 local time.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

import holidays

from shared.policy import BusinessDays, Calendar


@dataclass(frozen=True)
class WorkingCalendar:
    """A policy calendar, ready to count: its holidays and closures by date."""

    spec: Calendar
    _holidays: holidays.HolidayBase

    @staticmethod
    @cache
    def of(spec: Calendar) -> "WorkingCalendar":
        country, _, subdivision = spec.holidays.partition("-")
        return WorkingCalendar(
            spec, holidays.country_holidays(country, subdiv=subdivision or None)
        )

    def closed_because(self, day: date) -> str | None:
        """Why ``day`` is not a working day (``None`` when it is one)."""
        if day.weekday() >= 5:
            return "weekend"
        if day in self.spec.closures:
            return "agency closure"
        name: str | None = self._holidays.get(day)
        return name

    def is_working_day(self, day: date) -> bool:
        return self.closed_because(day) is None


def business_deadline(
    start: datetime, due: BusinessDays, calendar: WorkingCalendar
) -> datetime:
    """The end of the working day on the ``due.days``-th working day after the day
    ``start`` falls on (local to the calendar), in UTC like every stored time."""
    zone = calendar.spec.zone
    day = start.astimezone(zone).date()
    counted = 0
    while counted < due.days:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return datetime.combine(day, calendar.spec.day_ends, tzinfo=zone).astimezone(UTC)


def deadline(
    start: datetime,
    due: timedelta | BusinessDays,
    calendar_name: str | None,
    calendars: Mapping[str, Calendar],
) -> datetime:
    """When a duty started at ``start`` is due: ``start + due`` for a duration; for
    business days, counted in the named calendar."""
    if not isinstance(due, BusinessDays):
        return start + due
    if calendar_name is None or calendar_name not in calendars:
        # The loader refuses such a rule; reaching here is a programming error.
        raise ValueError(f"{due} needs a calendar; got {calendar_name!r}")
    return business_deadline(start, due, WorkingCalendar.of(calendars[calendar_name]))
