"""An obligation as the compliance report counts it: the notifier's (from its
``mfc.obligation.*`` events) or the derived view's (from the episode events and the
policy of record). Pure."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class ObligationRecord:
    obligation_id: str
    episode_id: str
    county_code: str
    kind: str
    jurisdiction: str | None
    clock_start: datetime
    due_at: datetime
    policy_digest: str | None
    satisfied_at: datetime | None = None
    notice_event_id: str | None = None
    closed_at: datetime | None = None
    breached_before_close: bool = False
    waiting_reason: str | None = None
    """Why the last notice did not satisfy it (an item missing, a reference number)."""

    def outcome(self, now: datetime) -> str:
        if self.satisfied_at is not None:
            return "met" if self.satisfied_at <= self.due_at else "late"
        if self.closed_at is not None and not self.breached_before_close:
            return "moot"
        if now <= self.due_at:
            return "pending"
        # Notified, incomplete: a notice came but lacked what the rule requires.
        return "incomplete" if self.waiting_reason is not None else "missing"

    def row(self, now: datetime) -> dict[str, Any]:
        elapsed = (
            (self.satisfied_at - self.clock_start).total_seconds()
            if self.satisfied_at is not None
            else None
        )
        return {
            "episode_id": self.episode_id,
            "county_code": self.county_code,
            "obligation_id": self.obligation_id,
            "kind": self.kind,
            "jurisdiction": self.jurisdiction,
            "policy_digest": self.policy_digest,
            "clock_start": self.clock_start.isoformat(),
            "due_at": self.due_at.isoformat(),
            "notified_at": self.satisfied_at.isoformat() if self.satisfied_at else None,
            "seconds_to_notice": elapsed,
            "allowed_seconds": (self.due_at - self.clock_start).total_seconds(),
            "outcome": self.outcome(now),
            "notice_event_id": self.notice_event_id,
            "waiting_reason": self.waiting_reason,
        }
