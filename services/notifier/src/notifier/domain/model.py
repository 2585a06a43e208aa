"""The notifier's values: the episode as the notifier keeps it, an obligation as it
opens, as a notice or closing reads it and as its steps and alerts see it, and the
alerts and acknowledgements of its steps."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from notifier.domain.steps import Snooze, Timing
from rules import EndangermentFlags, EpisodeFacts
from shared.alerts import Alert
from shared.policy import Chain, ClockStart, Defaults, ObligationRule, SatisfiedBy

ClockTimes = Mapping[ClockStart, datetime | None]
"""The moments a rule's clock may start from (``determined_missing_at`` may be None)."""


OpenedBy = Literal["reported", "located", "screening", "update"]


class EpisodeStatus(StrEnum):
    MISSING = "missing"
    LOCATED = "located"
    CLOSED = "closed"


class ObligationStatus(StrEnum):
    OPEN = "open"
    SATISFIED = "satisfied"
    MOOT = "moot"


@dataclass(frozen=True)
class StoredFacts:
    """What the rules' conditions read, with the endangerment flags behind
    ``endangered`` (None: a row from before the flags were kept)."""

    facts: EpisodeFacts
    flags: EndangermentFlags | None


@dataclass(frozen=True)
class EpisodeRecord:
    """An episode as the notifier keeps it: never the child's name."""

    id: UUID
    county_code: str
    child_initials: str
    staff: Mapping[str, Any]
    """The caseworker and supervisor, as the policy's roles name them."""
    facts: StoredFacts
    times: ClockTimes
    status: EpisodeStatus


@dataclass(frozen=True)
class NewObligation:
    """An obligation a rule opens, with the timing frozen from the policy in force."""

    id: UUID
    episode_id: UUID
    county_code: str
    jurisdiction: str
    rule: ObligationRule
    chain: Chain
    opened_at: datetime
    opened_by: OpenedBy
    clock_start: datetime
    due_at: datetime
    policy_digest: str
    reminders: tuple[timedelta, ...]
    breach_repeat: timedelta
    snooze: timedelta

    def timing(self) -> Timing:
        return Timing(
            self.opened_at, self.due_at, self.chain, self.reminders, self.breach_repeat
        )


@dataclass(frozen=True)
class OpenObligation:
    """An open obligation as a recorded notice or the episode's closing reads it."""

    id: UUID
    episode_id: UUID
    county_code: str
    kind: str
    satisfied_by: SatisfiedBy
    clock_start: datetime
    due_at: datetime
    breached: bool
    report_items: tuple[str, ...] = ()
    """What must accompany the notice (the rule's, frozen when it opened)."""

    @classmethod
    def of(cls, new: NewObligation, *, breached: bool = False) -> "OpenObligation":
        return cls(
            id=new.id,
            episode_id=new.episode_id,
            county_code=new.county_code,
            kind=new.rule.id,
            satisfied_by=new.rule.satisfied_by,
            clock_start=new.clock_start,
            due_at=new.due_at,
            breached=breached,
            report_items=tuple(new.rule.report_items),
        )


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


@dataclass(frozen=True)
class StepAlert:
    """The alert of one obligation's step: kept once per obligation and step."""

    alert: Alert
    obligation_id: UUID
    step_key: str
    level: int
    level_name: str

    @property
    def episode_id(self) -> UUID:
        """An obligation's alert is about its episode, always."""
        assert self.alert.episode_id is not None
        return self.alert.episode_id


@dataclass(frozen=True)
class AlertRef:
    """A raised alert as an acknowledgement reads it."""

    id: UUID
    obligation_id: UUID
    episode_id: UUID
    level: int


@dataclass(frozen=True)
class Ack:
    acked_by: str
    acked_at: datetime
    note: str | None
