"""The "record a notice given" form, read into the body of intake's notification
call, or the problems a person can fix. Pure.

When the notice was given is typed in the person's own local time. The console's
script sends that moment as UTC (``notified_at_utc``, worked out by the browser for
the date entered, daylight saving included); without the script the typed time is
read with the page's UTC offset (``tz_offset``, minutes as JavaScript gives them),
or as UTC when there is none. ``notified_by`` is not asked: intake takes it from
the sign-in.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.words import METHODS, RECIPIENTS

MAX_OFFSET_MINUTES = 14 * 60  # the widest offset of any time zone


def notice_from_form(
    fields: dict[str, str],
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    recipient = fields.get("recipient", "")
    if recipient not in RECIPIENTS:
        problems.append(("recipient", "Choose who was told."))
    method = fields.get("method", "")
    if method not in METHODS:
        problems.append(("method", "Choose how they were told."))
    notified_at = _moment(fields)
    if notified_at is None:
        problems.append(("notified_at", "Give the date and time the notice was given."))
    notice = {
        "recipient": recipient,
        "method": method,
        "notified_at": notified_at.isoformat() if notified_at else None,
        "reference_number": fields.get("reference_number") or None,
        "ncic_number": fields.get("ncic_number") or None,
        "agency": fields.get("agency") or None,
    }
    return {k: v for k, v in notice.items() if v is not None}, problems


def _moment(fields: dict[str, str]) -> datetime | None:
    sent = fields.get("notified_at_utc", "")
    if sent:
        try:
            moment = datetime.fromisoformat(sent.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    try:
        local = datetime.fromisoformat(fields.get("notified_at", ""))
        offset = int(fields.get("tz_offset") or 0)
    except ValueError:
        return None
    if local.tzinfo is not None or abs(offset) > MAX_OFFSET_MINUTES:
        return None
    return local.replace(tzinfo=UTC) + timedelta(minutes=offset)
