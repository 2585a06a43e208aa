"""An episode's story in one list: what the county reported (intake's timeline), the
alerts sent and who acknowledged them (the notifier), and when each duty was done or
missed. Pure."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.domain.words import (
    METHODS,
    REASON_WORDS,
    RECIPIENTS,
    event_words,
    level_words,
)
from shared.events import EventType


@dataclass(frozen=True)
class Happening:
    at: datetime
    what: str
    detail: str = ""


def _at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _report_detail(entry: Mapping[str, Any]) -> str:
    data = entry.get("data") or {}
    if entry["type"] == EventType.NOTIFICATION_RECORDED:
        recipient, method = str(data.get("recipient")), str(data.get("method"))
        parts = [
            RECIPIENTS.get(recipient, recipient),
            METHODS.get(method, method).lower(),
        ]
        if data.get("reference_number"):
            parts.append(f"reference {data['reference_number']}")
        if data.get("notified_by"):
            parts.append(f"by {data['notified_by']}")
        return ", ".join(parts)
    if entry["type"] == EventType.EPISODE_UPDATED and data.get("note"):
        return str(data["note"])
    return ""


def timeline(
    episode: Mapping[str, Any],
    obligations: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
) -> list[Happening]:
    """Newest first."""
    found = [
        Happening(_at(t["occurred_at"]), event_words(t["type"]), _report_detail(t))
        for t in episode.get("timeline") or []
    ]
    titles = {str(o["id"]): str(o["title"]) for o in obligations}
    for o in obligations:
        if o.get("satisfied_at"):
            found.append(Happening(_at(o["satisfied_at"]), "Duty done", o["title"]))
        if o.get("breached_at"):
            found.append(
                Happening(_at(o["breached_at"]), "Deadline missed", o["title"])
            )
    for a in alerts:
        names = ", ".join(
            r.get("name") or r.get("id", "") for r in a.get("recipients", [])
        )
        reason = REASON_WORDS.get(a.get("reason", ""), a.get("reason", ""))
        found.append(
            Happening(
                _at(a["created_at"]),
                f"Alert: {reason.lower()}",
                f"{titles.get(str(a.get('obligation_id')), '')} to {names or 'nobody'}"
                f" ({level_words(a.get('level'), a.get('level_name'))})",
            )
        )
        found.extend(
            Happening(
                _at(ack["acked_at"]),
                "Alert acknowledged",
                f"by {ack['acked_by']}"
                + (f": {ack['note']}" if ack.get("note") else ""),
            )
            for ack in a.get("acks") or []
        )
    return sorted(found, key=lambda h: h.at, reverse=True)
