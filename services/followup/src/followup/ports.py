"""Followup's ports: the repository of episodes, series and prompts, and the effects
a handler has besides its state (timer steps, outgoing events, alerts), as
Protocols; and an in-memory fake of each for the unit tests.

Every method runs in the caller's transaction; ``lock_*`` hold the row until commit.
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from followup.domain.model import (
    Ended,
    Episode,
    Prompt,
    PromptCase,
    PromptStatus,
    Series,
    SeriesStatus,
)
from shared.alerts import Alert
from shared.db import Conn
from shared.policy import PromptStart
from shared.published import Outgoing
from shared.timers import Step


class Episodes(Protocol):
    async def add_episodes(self, episodes: Sequence[Episode]) -> None:
        """Record reported episodes; one known already is left as it is."""

    async def lock_episode(self, episode_id: UUID) -> Episode | None: ...

    async def save_episode(self, episode: Episode) -> None:
        """Store its completeness and status."""


class SeriesRepository(Protocol):
    async def add_series(self, new: Sequence[Series]) -> set[UUID]:
        """Start them; the ids started (not one whose episode, rule and trigger have
        one already)."""

    async def lock_series(
        self, series_ids: Sequence[UUID]
    ) -> dict[UUID, tuple[Series, Episode]]:
        """These series (those there are), each with its episode, locked."""

    async def has_active_series(self, episode_id: UUID, kind: PromptStart) -> bool: ...

    async def end_series(
        self,
        episode_id: UUID,
        kinds: Collection[PromptStart],
        *,
        reason: str,
        now: datetime,
    ) -> Ended:
        """End the episode's active series of ``kinds`` and their open prompts."""

    async def end_unissued_series(
        self, episode_id: UUID, completed_by_event: str, *, reason: str, now: datetime
    ) -> None:
        """End the active series that ``completed_by_event`` completes and that have
        issued no prompt yet."""


class Prompts(Protocol):
    async def add_prompts(self, prompts: Sequence[Prompt]) -> set[UUID]:
        """Issue prompts; the ids issued (not one whose series has its occurrence
        already)."""

    async def lock_prompt(self, prompt_id: UUID) -> PromptCase | None: ...

    async def save_prompt(self, prompt: Prompt) -> None:
        """Store its status, overdue, completion and ending."""

    async def lock_open_prompts_completed_by(
        self, episode_id: UUID, event_type: str
    ) -> list[Prompt]:
        """The episode's open prompts whose rule ``event_type`` completes."""

    async def find_prompts(
        self,
        *,
        episode_id: UUID | None,
        status: PromptStatus | None,
        overdue: bool,
        limit: int,
        counties: list[str] | None,
    ) -> list[Prompt]:
        """By issue time; ``overdue``: only those past due; ``counties``: the
        counties to look in (None: every county)."""


class Effects(Protocol):
    async def schedule(self, steps: Sequence[Step]) -> None:
        """Add timer steps (a subject's step already there is not added twice)."""

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        """Retire the pending timer steps of these subjects."""

    async def emit(self, events: Sequence[Outgoing]) -> None:
        """Write events to the outbox, in order."""

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:
        """Queue the deliveries of these alerts."""

    async def flush(self) -> None:
        """Write the steps and events a batch's port deferred (``shared.effects``)."""


class Covers(Protocol):
    async def add_cover(
        self,
        cover_id: UUID,
        schedule: str,
        contact: str,
        start: datetime,
        end: datetime,
    ) -> None:
        """Keep a cover the notifier added (one known already is left as it is)."""

    async def remove_cover(self, cover_id: UUID, at: datetime) -> None: ...

    async def covers_at(self, at: datetime) -> dict[str, str]:
        """Schedule -> the contact a cover puts on call at ``at``."""


class Followup(Episodes, SeriesRepository, Prompts, Effects, Covers, Protocol):
    """Everything a followup handler reads, writes and causes, in one transaction."""


PortFactory = Callable[[Conn], Followup]
"""The port over a connection whose transaction is open (from the composition root)."""


# --------------------------------------------------------------------------- #
# In-memory fakes
# --------------------------------------------------------------------------- #


@dataclass
class FakeFollowup:
    """``Followup`` in memory: the tables as dicts, the effects recorded in order."""

    episodes: dict[UUID, Episode] = field(default_factory=dict)
    series: dict[UUID, Series] = field(default_factory=dict)
    prompts: dict[UUID, Prompt] = field(default_factory=dict)
    covers: dict[UUID, tuple[str, str, datetime, datetime]] = field(
        default_factory=dict
    )
    """Covers in force or to come: id -> (schedule, contact, start, end)."""
    scheduled: list[Step] = field(default_factory=list)
    cancelled: dict[UUID, datetime] = field(default_factory=dict)
    """Subjects whose pending steps were retired, and when."""
    events: list[Outgoing] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    async def add_episodes(self, episodes: Sequence[Episode]) -> None:
        for episode in episodes:
            self.episodes.setdefault(episode.episode_id, episode)

    async def lock_episode(self, episode_id: UUID) -> Episode | None:
        return self.episodes.get(episode_id)

    async def save_episode(self, episode: Episode) -> None:
        self.episodes[episode.episode_id] = episode

    async def add_series(self, new: Sequence[Series]) -> set[UUID]:
        started = set()
        for series in new:
            key = (series.episode_id, series.rule.id, series.trigger_id)
            if all(
                (s.episode_id, s.rule.id, s.trigger_id) != key for s in self._series()
            ):
                self.series[series.id] = series
                started.add(series.id)
        return started

    async def lock_series(
        self, series_ids: Sequence[UUID]
    ) -> dict[UUID, tuple[Series, Episode]]:
        return {
            i: (s, self.episodes[s.episode_id])
            for i in series_ids
            if (s := self.series.get(i)) is not None
        }

    async def has_active_series(self, episode_id: UUID, kind: PromptStart) -> bool:
        return any(s.starts_on is kind for s in self._series(episode_id, active=True))

    async def end_series(
        self,
        episode_id: UUID,
        kinds: Collection[PromptStart],
        *,
        reason: str,
        now: datetime,
    ) -> Ended:
        ending = [
            s for s in self._series(episode_id, active=True) if s.starts_on in kinds
        ]
        prompts = [
            replace(p, status=PromptStatus.ENDED, ended_reason=reason)
            for s in ending
            for p in self._prompts(s.id)
            if p.status is PromptStatus.OPEN
        ]
        for s in ending:
            self._end(s, reason, now)
        self.prompts.update((p.id, p) for p in prompts)
        return Ended(tuple(s.id for s in ending), tuple(prompts))

    async def end_unissued_series(
        self, episode_id: UUID, completed_by_event: str, *, reason: str, now: datetime
    ) -> None:
        for s in self._series(episode_id, active=True):
            if s.rule.completed_by_event == completed_by_event and not self._prompts(
                s.id
            ):
                self._end(s, reason, now)

    async def add_prompts(self, prompts: Sequence[Prompt]) -> set[UUID]:
        issued = set()
        for prompt in prompts:
            key = (prompt.series_id, prompt.occurrence)
            if all((p.series_id, p.occurrence) != key for p in self.prompts.values()):
                self.prompts[prompt.id] = prompt
                issued.add(prompt.id)
        return issued

    async def lock_prompt(self, prompt_id: UUID) -> PromptCase | None:
        prompt = self.prompts.get(prompt_id)
        if prompt is None:
            return None
        rule = self.series[prompt.series_id].rule
        return PromptCase(prompt, rule, self.episodes[prompt.episode_id])

    async def save_prompt(self, prompt: Prompt) -> None:
        self.prompts[prompt.id] = prompt

    async def lock_open_prompts_completed_by(
        self, episode_id: UUID, event_type: str
    ) -> list[Prompt]:
        return [
            p
            for p in self.prompts.values()
            if p.episode_id == episode_id
            and p.status is PromptStatus.OPEN
            and self.series[p.series_id].rule.completed_by_event == event_type
        ]

    async def find_prompts(
        self,
        *,
        episode_id: UUID | None,
        status: PromptStatus | None,
        overdue: bool,
        limit: int,
        counties: list[str] | None,
    ) -> list[Prompt]:
        found = [
            p
            for p in self.prompts.values()
            if episode_id in (None, p.episode_id)
            and status in (None, p.status)
            and (not overdue or p.overdue_at is not None)
            and (
                counties is None or self.episodes[p.episode_id].county_code in counties
            )
        ]
        return sorted(found, key=lambda p: (p.issued_at, p.rule_id))[:limit]

    async def schedule(self, steps: Sequence[Step]) -> None:
        known = {(s.subject_id, s.step_key) for s in self.scheduled}
        self.scheduled += [s for s in steps if (s.subject_id, s.step_key) not in known]

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        self.cancelled.update(dict.fromkeys(subject_ids, now))

    async def emit(self, events: Sequence[Outgoing]) -> None:
        self.events += events

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:  # noqa: ARG002
        self.alerts += alerts

    async def flush(self) -> None:
        pass  # nothing is deferred in memory

    async def add_cover(
        self,
        cover_id: UUID,
        schedule: str,
        contact: str,
        start: datetime,
        end: datetime,
    ) -> None:
        self.covers.setdefault(cover_id, (schedule, contact, start, end))

    async def remove_cover(self, cover_id: UUID, at: datetime) -> None:  # noqa: ARG002
        self.covers.pop(cover_id, None)

    async def covers_at(self, at: datetime) -> dict[str, str]:
        return {s: c for s, c, start, end in self.covers.values() if start <= at < end}

    def _series(
        self, episode_id: UUID | None = None, *, active: bool = False
    ) -> list[Series]:
        return [
            s
            for s in self.series.values()
            if episode_id in (None, s.episode_id)
            and (not active or s.status is SeriesStatus.ACTIVE)
        ]

    def _prompts(self, series_id: UUID) -> list[Prompt]:
        return [p for p in self.prompts.values() if p.series_id == series_id]

    def _end(self, series: Series, reason: str, now: datetime) -> None:
        self.series[series.id] = replace(
            series, status=SeriesStatus.ENDED, ended_at=now, ended_reason=reason
        )
