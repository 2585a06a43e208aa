"""The alert inbox: which open duties come first. Pure."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.domain.words import countdown, level_words


@dataclass(frozen=True)
class InboxRow:
    obligation_id: str
    episode_id: str
    county_code: str
    case_id: str
    child_initials: str
    title: str
    due_at: datetime
    countdown: str
    overdue: bool
    level: str
    acked: bool
    alert_id: str | None
    waiting_reason: str | None

    @property
    def link(self) -> str:
        if self.alert_id:
            return f"/alerts/{self.alert_id}"
        return f"/episodes/{self.episode_id}"


def inbox(
    obligations: Sequence[Mapping[str, Any]],
    case_ids: Mapping[str, str],
    now: datetime,
) -> list[InboxRow]:
    """Open duties, most urgent first: the most overdue at the top, then the ones
    due soonest."""
    rows = [
        _row(o, case_ids, now) for o in obligations if o.get("status", "open") == "open"
    ]
    return sorted(rows, key=lambda r: (r.due_at, r.title))


def _row(o: Mapping[str, Any], case_ids: Mapping[str, str], now: datetime) -> InboxRow:
    due = datetime.fromisoformat(str(o["due_at"]))
    text, overdue = countdown(due, now)
    episode_id = str(o["episode_id"])
    return InboxRow(
        obligation_id=str(o["id"]),
        episode_id=episode_id,
        county_code=str(o["county_code"]),
        case_id=case_ids.get(episode_id, ""),
        child_initials=str(o.get("child_initials") or ""),
        title=str(o["title"]),
        due_at=due,
        countdown=text,
        overdue=overdue,
        level=level_words(o.get("level_reached")),
        acked=bool(o.get("acked")),
        alert_id=str(o["last_alert_id"]) if o.get("last_alert_id") else None,
        waiting_reason=o.get("waiting_reason"),
    )
