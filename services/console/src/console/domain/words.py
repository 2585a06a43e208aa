"""Plain words for what the services return: no event type names, no jargon. Pure."""

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from shared.events import EventType
from shared.published import AlertEvent, ObligationEvent, PromptEvent

EVENT_WORDS: dict[str, str] = {
    EventType.EPISODE_REPORTED: "Reported missing",
    EventType.EPISODE_UPDATED: "New information",
    EventType.NOTIFICATION_RECORDED: "Notice recorded",
    EventType.EPISODE_LOCATED: "Child located",
    EventType.SCREENING_COMPLETED: "Trafficking screening done",
    EventType.EPISODE_CLOSED: "Episode closed",
    ObligationEvent.OPENED: "Duty opened",
    ObligationEvent.REMINDED: "Reminder sent",
    ObligationEvent.ESCALATED: "Escalated",
    ObligationEvent.SATISFIED: "Duty done",
    ObligationEvent.BREACHED: "Deadline missed",
    ObligationEvent.MOOT: "Duty no longer needed",
    AlertEvent.SENT: "Alert sent",
    AlertEvent.ACKNOWLEDGED: "Alert acknowledged",
    AlertEvent.FAILED: "Alert could not be delivered",
    PromptEvent.ISSUED: "Task given",
    PromptEvent.COMPLETED: "Task done",
}

RECIPIENTS = {
    "law_enforcement": "Law enforcement",
    "ncmec": "NCMEC",
    "supervisor": "Supervisor",
    "parent_guardian": "Parent or guardian",
    "court": "Court",
    "child_attorney": "Child's attorney",
    "guardian_ad_litem": "Guardian ad litem",
    "tribe": "Tribe",
    "casa": "Court-appointed special advocate (CASA)",
    "caregiver": "Foster parent or caregiver",
    "missing_children_unit": "State missing-children unit",
    "child_and_family_team": "Child and Family Team meeting",
}

METHODS = {
    "phone": "Phone call",
    "written": "In writing",
    "online": "Online form",
    "system": "Through a system",
}

STATUS_WORDS = {
    "open": "Open",
    "satisfied": "Done",
    "moot": "No longer needed",
    "breached": "Overdue",
}

REASON_WORDS = {
    "opened": "New duty",
    "reminded": "Reminder",
    "escalated": "Escalated",
    "breached": "Deadline missed",
}

OUTCOME_WORDS = {
    "met": "On time",
    "late": "Late",
    "missing": "Never given",
    "pending": "Not yet due",
    "moot": "No longer needed",
}


def event_words(event_type: str) -> str:
    return EVENT_WORDS.get(
        event_type, event_type.removeprefix("mfc.").replace(".", " ")
    )


def when(moment: datetime | str | None, zone: tzinfo = UTC) -> str:
    """``2026-11-29 22:10 EST`` in the agency's time zone (``UTC`` by default); an
    empty string for nothing."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def span(seconds: float) -> str:
    """``2 h 5 min``, ``3 d 4 h``, ``12 min 5 s``: how long, to the unit that
    matters (seconds in the last hour: a countdown people watch)."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def turn_words(seconds: float) -> str:
    """A rota's turn as people say it: ``1 week``, ``2 days``, ``12 hours``."""
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return span(seconds)


def countdown(due: datetime | str, now: datetime) -> tuple[str, bool]:
    """(``due in 2 h 5 min`` | ``overdue by 12 min``, overdue?)"""
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    left = (due - now).total_seconds()
    if left < 0:
        return f"overdue by {span(left)}", True
    return f"due in {span(left)}", False


def level_words(level: int | None, level_name: str | None = None) -> str:
    if level is None:
        return "No alert yet"
    name = (level_name or "").replace("_", " ")
    return f"Level {level + 1}" + (f": {name}" if name else "")


def initials(first: str | None, last: str | None) -> str:
    return "".join(f"{part.strip()[0].upper()}." for part in (first, last) if part)


def obligation_state(obligation: dict[str, Any], now: datetime) -> tuple[str, str]:
    """(words, css class) for an obligation's state."""
    status = obligation.get("status", "open")
    if status == "open":
        _, overdue = countdown(obligation["due_at"], now)
        return ("Overdue" if overdue else "Open"), ("overdue" if overdue else "open")
    return STATUS_WORDS.get(status, status), "done"


ITEM_WORDS = {
    "photo_url": "photo",
    "height_cm": "height",
    "weight_kg": "weight",
    "hair_color": "hair color",
    "eye_color": "eye color",
    "law_enforcement_report_number": "law-enforcement report number",
    "ncmec_case_number": "NCMEC case number",
    "sex_trafficking_vulnerability": "sex-trafficking vulnerability",
}

CLOCK_WORDS = {
    "agency_learned_at": "the agency learned",
    "last_seen_at": "the child was last seen",
    "discovered_at": "the caregiver noticed",
    "determined_missing_at": "the child was determined missing",
    "located_at": "the child was located",
    "screening_completed_at": "the screening was done",
}


def item_words(path: str) -> str:
    """``child.photo_url`` -> ``photo``: a report item as people say it."""
    last = path.rsplit(".", 1)[-1]
    return ITEM_WORDS.get(last, last.replace("_", " "))


def items_words(paths: list[str] | None) -> str:
    return ", ".join(item_words(p) for p in paths or [])


def duration_words(text: str) -> str:
    """``1d12h`` -> ``1 d 12 h``; ``90m`` -> ``90 min``; as the policy file says it."""
    units = {"d": "d", "h": "h", "m": "min", "s": "s", "ms": "ms"}
    parts = re.findall(r"(\d+)(ms|d|h|m|s)", str(text))
    return " ".join(f"{n} {units[u]}" for n, u in parts) or str(text)


def rule_words(rule: dict[str, Any]) -> str:
    """``due 2 h after the agency learned``."""
    due, clock = rule.get("due"), rule.get("clock")
    if not due:
        return ""
    return f"due {duration_words(str(due))} after {CLOCK_WORDS.get(str(clock), str(clock))}"


_PROBLEM_WORDS = (
    (
        re.compile(r"String should have at most (\d+) characters?"),
        r"Too long: at most \1 characters.",
    ),
    (
        re.compile(r"String should have at least (\d+) characters?"),
        r"Too short: at least \1 characters.",
    ),
    (re.compile(r"Field required"), "This is needed."),
    (re.compile(r"Input should be a valid datetime.*"), "Give a date and time."),
)


def problem_words(message: str) -> str:
    """A service's validation message, as a person reads it."""
    for pattern, words in _PROBLEM_WORDS:
        if pattern.fullmatch(message):
            return pattern.sub(words, message)
    return message
