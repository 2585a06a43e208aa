"""The "someone else covers" form of the on-call page, read into the body of the
notifier's override call, or the problems a person can fix. Pure.

Times are typed in the agency's time zone (the page says which): a schedule serves
the whole agency, so everyone reads the same clock."""

from datetime import datetime, timedelta, tzinfo
from typing import Any

REASON_LONGEST = 500
HOUR = timedelta(hours=1)


def cover_from_form(
    fields: dict[str, str],
    zone: tzinfo,
    contacts: list[str],
    *,
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The override to ask for, or what to fix. A start a little in the past (the
    form's default, filled in when the page loaded) is sent as ``now``."""
    problems: list[tuple[str, str]] = []
    contact = fields.get("contact", "")
    if contact not in contacts:
        problems.append(("contact", "Choose who covers."))
    start = _local(fields.get("start", ""), zone)
    if start is not None and now is not None and now - HOUR < start < now:
        start = now
    if start is None:
        problems.append(("start", "Give the date and time the cover starts."))
    end = _local(fields.get("end", ""), zone)
    if end is None:
        problems.append(("end", "Give the date and time the cover ends."))
    elif start is not None and end <= start:
        problems.append(("end", "The cover must end after it starts."))
    reason = " ".join(fields.get("reason", "").split())
    if not reason:
        problems.append(("reason", "Say why (for example: sick day, swapped shifts)."))
    elif len(reason) > REASON_LONGEST:
        problems.append(
            ("reason", f"Keep the reason under {REASON_LONGEST} characters.")
        )
    cover = {
        "contact": contact,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "reason": reason,
    }
    return cover, problems


def _local(typed: str, zone: tzinfo) -> datetime | None:
    """A ``datetime-local`` value read in the agency's zone."""
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return None
    return moment.replace(tzinfo=zone)
