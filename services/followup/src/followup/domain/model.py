"""Followup's state as frozen values: the episode as prompts see it, a series (one
prompt rule running for one episode) and a prompt (one occurrence of a series)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.events import Staff
from shared.policy import PromptRule, PromptStart


class EpisodeStatus(StrEnum):
    MISSING = "missing"
    LOCATED = "located"
    CLOSED = "closed"


class SeriesStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class PromptStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    ENDED = "ended"


@dataclass(frozen=True)
class Episode:
    """What prompts need of an episode: initials (never the child's name), staff."""

    episode_id: UUID
    county_code: str
    child_initials: str
    caseworker: Staff
    supervisor: Staff
    completeness: tuple[str, ...]
    """Report items still missing."""
    status: EpisodeStatus = EpisodeStatus.MISSING

    def staff(self) -> dict[str, dict[str, Any]]:
        """The episode's people as the policy's targets name them."""
        return {
            "caseworker": self.caseworker.model_dump(mode="json"),
            "supervisor": self.supervisor.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class Series:
    """One prompt rule running for one episode (a one-off is a series of one)."""

    id: UUID
    episode_id: UUID
    rule: PromptRule
    """The rule as it applied when the series started (frozen)."""
    starts_on: PromptStart
    policy_digest: str
    trigger_id: str
    """What started it: the kind for a series an episode has once, else the event."""
    started_at: datetime
    status: SeriesStatus = SeriesStatus.ACTIVE
    ended_at: datetime | None = None
    ended_reason: str | None = None


@dataclass(frozen=True)
class Prompt:
    """One occurrence of a series: a task for a person, due at a time."""

    id: UUID
    series_id: UUID
    episode_id: UUID
    rule_id: str
    title: str
    assignee: str
    occurrence: int
    issued_at: datetime
    due_at: datetime
    missing_items: tuple[str, ...] | None = None
    """For a prompt to provide report items: those missing when it was issued."""
    status: PromptStatus = PromptStatus.OPEN
    overdue_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    note: str | None = None
    ended_reason: str | None = None


@dataclass(frozen=True)
class PromptCase:
    """A prompt with the rule of its series and its episode (escalation, scope)."""

    prompt: Prompt
    rule: PromptRule
    episode: Episode


@dataclass(frozen=True)
class Ended:
    """What ending series changed: the series ended and their prompts that were open."""

    series_ids: tuple[UUID, ...]
    prompts: tuple[Prompt, ...]


class PromptNotFoundError(Exception):
    """No such prompt, or not one the caller may see."""


class PromptNotOpenError(Exception):
    """The prompt was completed or ended already."""
