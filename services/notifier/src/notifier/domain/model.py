"""The notifier's values: an open obligation as its steps and alerts see it."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from notifier.domain.steps import Snooze, Timing
from shared.policy import Chain, Defaults


@dataclass(frozen=True)
class Obligation:
    """An obligation with what alerting needs of its episode (initials, staff)."""

    id: UUID
    episode_id: UUID
    county_code: str
    jurisdiction: str
    kind: str
    title: str
    status: str
    opened_at: datetime
    due_at: datetime
    waiting_reason: str | None
    child_initials: str
    staff: Mapping[str, Any]
    """The episode's caseworker and supervisor, as the policy's roles name them."""
    chain: Chain
    reminders: tuple[timedelta, ...] | None
    breach_repeat: timedelta | None
    snooze: timedelta | None
    snoozed_until: datetime | None
    snoozed_level: int | None

    def timing(self, defaults: Defaults) -> Timing:
        """The frozen timing; rows from before a part was frozen use ``defaults``."""
        return Timing(
            opened_at=self.opened_at,
            due_at=self.due_at,
            chain=self.chain,
            reminders=self.reminders
            if self.reminders is not None
            else tuple(defaults.reminders),
            breach_repeat=self.breach_repeat or defaults.breach_repeat,
        )

    def snoozed(self) -> Snooze:
        return Snooze(self.snoozed_until, self.snoozed_level)
