"""Which prompt series an episode event starts and ends, as pure decisions.

A series an episode has once (``reported``, ``located``, the first ``incomplete``)
is keyed by its kind; one an event starts each time is keyed by that event.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

from followup.domain.model import Episode, EpisodeStatus, Series
from followup.domain.prompts import ENDS, STARTS, rules_starting
from shared.events import EpisodeReported, EventType
from shared.policy import PromptRule, PromptStart

ITEMS_PROVIDED = "the report items were provided"
LOCATED = "the child was located"
DONE_BEFORE_DUE = "done before it was due"
"""Why a series a completing event settled before its prompt was issued ended."""


@dataclass(frozen=True)
class Start:
    """A series kind to start, and what keys it (a second start of a key is a no-op)."""

    kind: PromptStart
    trigger_id: str

    @classmethod
    def once(cls, kind: PromptStart) -> "Start":
        return cls(kind, kind.value)


@dataclass(frozen=True)
class Change:
    """What an episode event does: the episode as it now stands, the series kinds it
    ends (and why), and the series it starts."""

    episode: Episode
    starts: tuple[Start, ...] = ()
    ends: tuple[PromptStart, ...] = ()
    reason: str = ""


def episode_of(report: EpisodeReported) -> Episode:
    child = report.child
    return Episode(
        episode_id=report.episode_id,
        county_code=report.county_code,
        child_initials=f"{child.first_name[:1].upper()}.{child.last_name[:1].upper()}.",
        caseworker=report.caseworker,
        supervisor=report.supervisor,
        completeness=tuple(report.completeness),
    )


def on_report(report: EpisodeReported) -> Change:
    """The search series, and the incomplete one if the report misses items."""
    episode = episode_of(report)
    starts = [Start.once(PromptStart.REPORTED)]
    if episode.completeness:
        starts.append(Start.once(PromptStart.INCOMPLETE))
    return Change(episode, tuple(starts))


def may_start_incomplete_again(episode: Episode, completeness: Sequence[str]) -> bool:
    """Whether an update could restart the incomplete series (ask if one runs)."""
    return episode.status is EpisodeStatus.MISSING and bool(completeness)


def on_update(
    known: Episode,
    completeness: Sequence[str],
    *,
    event_id: str,
    incomplete_running: bool,
) -> Change:
    """Once no item is missing, the prompts to provide them end. While the child is
    missing, each update is new information to pass on."""
    episode = replace(known, completeness=tuple(completeness))
    ends = () if completeness else (PromptStart.INCOMPLETE,)
    if episode.status is not EpisodeStatus.MISSING:
        return Change(episode, (), ends, ITEMS_PROVIDED)
    starts = []
    if completeness and not incomplete_running:
        # An item is missing again (e.g. a photo withdrawn): prompt anew, keyed by
        # this update so the ended series does not block it.
        starts.append(Start(PromptStart.INCOMPLETE, event_id))
    starts.append(Start(PromptStart.NEW_INFORMATION, event_id))
    return Change(episode, tuple(starts), ends, ITEMS_PROVIDED)


def on_located(known: Episode) -> Change:
    """The search stops; the return's series (screening, debrief) start."""
    return Change(
        replace(known, status=EpisodeStatus.LOCATED),
        tuple(Start.once(kind) for kind in STARTS[EventType.EPISODE_LOCATED]),
        ENDS[EventType.EPISODE_LOCATED],
        LOCATED,
    )


def on_closed(known: Episode, reason: str) -> Change:
    """Closing ends every series (recorded as ended, never deleted)."""
    return Change(
        replace(known, status=EpisodeStatus.CLOSED),
        (),
        ENDS[EventType.EPISODE_CLOSED],
        f"episode closed: {reason}",
    )


def new_series(
    rules: Sequence[PromptRule],
    starts: Sequence[Start],
    *,
    episode_id: UUID,
    policy_digest: str,
    now: datetime,
    new_id: Callable[[], UUID] = uuid4,
) -> list[Series]:
    """A series for each rule in force that each start starts."""
    return [
        Series(
            id=new_id(),
            episode_id=episode_id,
            rule=rule,
            starts_on=start.kind,
            policy_digest=policy_digest,
            trigger_id=start.trigger_id,
            started_at=now,
        )
        for start in starts
        for rule in rules_starting(list(rules), start.kind)
    ]
