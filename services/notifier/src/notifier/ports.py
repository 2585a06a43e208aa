"""The notifier's ports: the repository of episodes, obligations, alerts and acks,
and the effects a handler has besides its state (timer steps, outgoing events,
alert deliveries), as Protocols; and an in-memory fake for the unit tests.

Every method runs in the caller's transaction; ``lock_*`` hold the rows until commit.
The firing path's methods take a whole batch, so a batch costs the same number of
statements whatever its size.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import count
from typing import Protocol
from uuid import UUID

from notifier.domain.model import (
    Ack,
    AlertRef,
    EpisodeRecord,
    NewObligation,
    Obligation,
    ObligationStatus,
    OpenObligation,
    StepAlert,
)
from notifier.domain.schedules import RuntimeOverride, covering
from shared.alerts import Alert
from shared.db import Conn
from shared.published import Outgoing
from shared.timers import KEEP, Move, Outcome, Step, Timer


class Episodes(Protocol):
    async def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        """Record reported episodes; one known already is left as it is."""

    async def lock_episode(self, episode_id: UUID) -> EpisodeRecord | None: ...

    async def save_episode(self, episode: EpisodeRecord) -> None:
        """Store its facts, clock times and status."""


class Obligations(Protocol):
    async def add_obligations(self, drafts: Sequence[NewObligation]) -> set[UUID]:
        """Open them; the ids opened (not one whose episode has its kind already)."""

    async def lock_open_obligations(self, episode_id: UUID) -> list[OpenObligation]:
        """The episode's open obligations, soonest due first."""

    async def set_waiting(self, obligation_id: UUID, reason: str) -> None: ...

    async def satisfy(
        self,
        obligation_id: UUID,
        *,
        at: datetime,
        by: str,
        reference_number: str | None,
        now: datetime,
    ) -> None:
        """Close it as satisfied at ``at`` by the notification event ``by``."""

    async def make_moot(
        self, obligation_ids: Sequence[UUID], *, reason: str, now: datetime
    ) -> None: ...

    async def lock_obligation(self, obligation_id: UUID) -> Obligation | None: ...

    async def snooze(self, obligation_id: UUID, *, until: datetime, level: int) -> None:
        """Quiet its alerts up to ``level`` until ``until``."""


class Firing(Protocol):
    async def lock_for_firing(
        self, obligation_ids: Sequence[UUID]
    ) -> dict[UUID, Obligation | None]:
        """The obligations, locked (one statement); None for one no longer open. One
        that another transaction holds (a notice being recorded) is left out: it
        fires next round."""

    async def insert_alerts(
        self, alerts: Sequence[StepAlert], now: datetime
    ) -> set[UUID]:
        """Keep the alerts not raised before (one per obligation and step) in one
        statement; the ids of those kept."""

    async def mark_breached(
        self, obligation_ids: Sequence[UUID], now: datetime
    ) -> None: ...


class Acks(Protocol):
    async def get_alert(self, alert_id: UUID) -> AlertRef | None: ...

    async def add_ack(self, alert_id: UUID, ack: Ack) -> None:
        """Keep it (every responder's ack is kept)."""

    async def acks_of(self, alert_id: UUID) -> list[Ack]:
        """The alert's acks, in the order they came."""


class Effects(Protocol):
    async def schedule(self, steps: Sequence[Step]) -> None:
        """Add timer steps (a subject's step already there is not added twice)."""

    async def pending_step(self, subject_id: UUID) -> Timer | None:
        """The subject's pending step, locked."""

    async def move_step(self, timer_id: int, to: Move) -> None: ...

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        """Retire the pending timer steps of these subjects."""

    async def emit(self, events: Sequence[Outgoing]) -> None:
        """Write events to the outbox, in order (one statement)."""

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:
        """Queue the deliveries of these alerts (one statement)."""

    async def flush(self) -> None:
        """Write the steps and events a batch's port deferred (``shared.effects``)."""


class Schedules(Protocol):
    async def lock_schedule(self, schedule: str) -> None:
        """Hold the schedule's overrides until commit (replicas add one at a time)."""

    async def overrides_in_force(
        self, schedule: str | None, now: datetime
    ) -> list[RuntimeOverride]:
        """Runtime overrides not removed and not over at ``now`` (of one schedule,
        or all), earliest first."""

    async def covers_at(self, at: datetime) -> dict[str, str]:
        """Schedule -> the contact a runtime override puts on call at ``at``."""

    async def add_override(self, override: RuntimeOverride) -> None: ...

    async def remove_override(
        self,
        schedule: str,
        override_id: UUID,
        *,
        by: str,
        reason: str | None,
        now: datetime,
    ) -> RuntimeOverride | None:
        """Mark it removed; None if the schedule has no such override in force."""


class Notifier(Episodes, Obligations, Firing, Acks, Effects, Schedules, Protocol):
    """Everything a notifier handler reads, writes and causes, in one transaction."""


PortFactory = Callable[[Conn], Notifier]
"""The port over a connection whose transaction is open (from the composition root)."""


# --------------------------------------------------------------------------- #
# In-memory fake
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FakeObligationRow:
    """An obligations row: how it opened, and what happened to it since."""

    opened: NewObligation
    status: ObligationStatus = ObligationStatus.OPEN
    waiting_reason: str | None = None
    snoozed_until: datetime | None = None
    snoozed_level: int | None = None
    breached_at: datetime | None = None
    satisfied_at: datetime | None = None
    satisfied_by: str | None = None
    reference_number: str | None = None
    closed_reason: str | None = None
    closed_at: datetime | None = None


@dataclass
class FakeNotifier:
    """``Notifier`` in memory: the tables as dicts, the effects recorded in order.

    ``busy``: obligations another transaction holds (left out of a firing batch).
    """

    episodes: dict[UUID, EpisodeRecord] = field(default_factory=dict)
    obligations: dict[UUID, FakeObligationRow] = field(default_factory=dict)
    raised: dict[UUID, StepAlert] = field(default_factory=dict)
    acks: dict[UUID, list[Ack]] = field(default_factory=dict)
    timers: dict[int, Timer] = field(default_factory=dict)
    """Pending timer rows by id."""
    scheduled: list[Step] = field(default_factory=list)
    moved: list[tuple[int, Move]] = field(default_factory=list)
    cancelled: dict[UUID, datetime] = field(default_factory=dict)
    """Subjects whose pending steps were retired, and when."""
    events: list[Outgoing] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    """Alerts whose deliveries were queued."""
    busy: set[UUID] = field(default_factory=set)
    overrides: dict[UUID, RuntimeOverride] = field(default_factory=dict)
    """Runtime on-call overrides not removed."""
    _ids: Iterator[int] = field(default_factory=lambda: count(1))

    async def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        for episode in episodes:
            self.episodes.setdefault(episode.id, episode)

    async def lock_episode(self, episode_id: UUID) -> EpisodeRecord | None:
        return self.episodes.get(episode_id)

    async def save_episode(self, episode: EpisodeRecord) -> None:
        self.episodes[episode.id] = episode

    async def add_obligations(self, drafts: Sequence[NewObligation]) -> set[UUID]:
        opened = set()
        for new in drafts:
            key = (new.episode_id, new.rule.id)
            if all(
                (r.opened.episode_id, r.opened.rule.id) != key for r in self._rows()
            ):
                self.obligations[new.id] = FakeObligationRow(new)
                opened.add(new.id)
        return opened

    async def lock_open_obligations(self, episode_id: UUID) -> list[OpenObligation]:
        rows = [
            r
            for r in self._rows()
            if r.opened.episode_id == episode_id and r.status is ObligationStatus.OPEN
        ]
        return [
            OpenObligation.of(r.opened, breached=r.breached_at is not None)
            for r in sorted(rows, key=lambda r: r.opened.due_at)
        ]

    async def set_waiting(self, obligation_id: UUID, reason: str) -> None:
        self._update(obligation_id, waiting_reason=reason)

    async def satisfy(
        self,
        obligation_id: UUID,
        *,
        at: datetime,
        by: str,
        reference_number: str | None,
        now: datetime,
    ) -> None:
        self._update(
            obligation_id,
            status=ObligationStatus.SATISFIED,
            satisfied_at=at,
            satisfied_by=by,
            reference_number=reference_number,
            waiting_reason=None,
            closed_at=now,
        )

    async def make_moot(
        self, obligation_ids: Sequence[UUID], *, reason: str, now: datetime
    ) -> None:
        for obligation_id in obligation_ids:
            self._update(
                obligation_id,
                status=ObligationStatus.MOOT,
                closed_reason=reason,
                closed_at=now,
            )

    async def lock_obligation(self, obligation_id: UUID) -> Obligation | None:
        row = self.obligations.get(obligation_id)
        return self._obligation(row) if row is not None else None

    async def snooze(self, obligation_id: UUID, *, until: datetime, level: int) -> None:
        self._update(obligation_id, snoozed_until=until, snoozed_level=level)

    async def lock_for_firing(
        self, obligation_ids: Sequence[UUID]
    ) -> dict[UUID, Obligation | None]:
        return {
            i: self._obligation(r) if r.status is ObligationStatus.OPEN else None
            for i in obligation_ids
            if (r := self.obligations.get(i)) is not None and i not in self.busy
        }

    async def insert_alerts(
        self,
        alerts: Sequence[StepAlert],
        now: datetime,  # noqa: ARG002
    ) -> set[UUID]:
        kept = set()
        for a in alerts:
            known = {(r.obligation_id, r.step_key) for r in self.raised.values()}
            if (a.obligation_id, a.step_key) not in known:
                self.raised[a.alert.id] = a
                kept.add(a.alert.id)
        return kept

    async def mark_breached(
        self, obligation_ids: Sequence[UUID], now: datetime
    ) -> None:
        for obligation_id in obligation_ids:
            self._update(obligation_id, breached_at=now)

    async def get_alert(self, alert_id: UUID) -> AlertRef | None:
        a = self.raised.get(alert_id)
        if a is None:
            return None
        return AlertRef(a.alert.id, a.obligation_id, a.episode_id, a.level)

    async def add_ack(self, alert_id: UUID, ack: Ack) -> None:
        self.acks.setdefault(alert_id, []).append(ack)

    async def acks_of(self, alert_id: UUID) -> list[Ack]:
        return list(self.acks.get(alert_id, []))

    async def schedule(self, steps: Sequence[Step]) -> None:
        known = {(s.subject_id, s.step_key) for s in self.scheduled}
        for s in steps:
            if (s.subject_id, s.step_key) not in known:
                self.scheduled.append(s)
                timer_id = next(self._ids)
                self.timers[timer_id] = Timer(
                    timer_id, s.subject_id, s.step_key, s.kind, s.fire_at, {**s.payload}
                )

    async def pending_step(self, subject_id: UUID) -> Timer | None:
        pending = [t for t in self.timers.values() if t.subject_id == subject_id]
        return min(pending, key=lambda t: (t.fire_at, t.id), default=None)

    async def move_step(self, timer_id: int, to: Move) -> None:
        self.moved.append((timer_id, to))
        self._move(timer_id, to)

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        self.cancelled.update(dict.fromkeys(subject_ids, now))
        for t in [t for t in self.timers.values() if t.subject_id in subject_ids]:
            del self.timers[t.id]

    async def emit(self, events: Sequence[Outgoing]) -> None:
        self.events += events

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:  # noqa: ARG002
        self.alerts += alerts

    async def flush(self) -> None:
        pass  # nothing is deferred in memory

    def settle(self, outcomes: Mapping[int, Outcome]) -> None:
        """What the scheduler does with a fired batch's outcomes: move a row on,
        retire it (None), or leave it (``KEEP``)."""
        for timer_id, outcome in outcomes.items():
            if isinstance(outcome, Move):
                self._move(timer_id, outcome)
            elif outcome != KEEP:
                del self.timers[timer_id]

    def _move(self, timer_id: int, to: Move) -> None:
        t = self.timers[timer_id]
        self.timers[timer_id] = Timer(
            t.id, t.subject_id, to.step_key, to.kind, to.fire_at, {**to.payload}
        )

    def _rows(self) -> list[FakeObligationRow]:
        return list(self.obligations.values())

    def _update(self, obligation_id: UUID, **changes: object) -> None:
        row = self.obligations[obligation_id]
        self.obligations[obligation_id] = replace(row, **changes)  # type: ignore[arg-type]

    def _obligation(self, row: FakeObligationRow) -> Obligation:
        o = row.opened
        episode = self.episodes[o.episode_id]
        return Obligation(
            id=o.id,
            episode_id=o.episode_id,
            county_code=o.county_code,
            jurisdiction=o.jurisdiction,
            kind=o.rule.id,
            title=o.rule.title,
            status=row.status.value,
            opened_at=o.opened_at,
            due_at=o.due_at,
            waiting_reason=row.waiting_reason,
            child_initials=episode.child_initials,
            staff=episode.staff,
            chain=o.chain,
            reminders=o.reminders,
            breach_repeat=o.breach_repeat,
            snooze=o.snooze,
            snoozed_until=row.snoozed_until,
            snoozed_level=row.snoozed_level,
        )

    async def lock_schedule(self, schedule: str) -> None:
        pass

    async def overrides_in_force(
        self, schedule: str | None, now: datetime
    ) -> list[RuntimeOverride]:
        return sorted(
            (
                o
                for o in self.overrides.values()
                if o.end > now and schedule in (None, o.schedule)
            ),
            key=lambda o: o.start,
        )

    async def covers_at(self, at: datetime) -> dict[str, str]:
        return covering(self.overrides.values(), at)

    async def add_override(self, override: RuntimeOverride) -> None:
        self.overrides[override.id] = override

    async def remove_override(
        self,
        schedule: str,
        override_id: UUID,
        *,
        by: str,  # noqa: ARG002
        reason: str | None,  # noqa: ARG002
        now: datetime,
    ) -> RuntimeOverride | None:
        found = self.overrides.get(override_id)
        if found is None or found.schedule != schedule or found.end <= now:
            return None
        return self.overrides.pop(override_id)
