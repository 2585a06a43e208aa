"""Which obligations an episode event opens, satisfies or makes moot, and what the
notifier keeps of an episode's facts as events add to them. The rules' conditions
and deadlines are the policy's rule evaluation (``rules``); when each step fires is
``notifier.domain.steps``. No I/O, no clock: moments and ids are passed in."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

from notifier.domain.model import (
    ClockTimes,
    EpisodeRecord,
    EpisodeStatus,
    NewObligation,
    OpenedBy,
    OpenObligation,
    StoredFacts,
)
from rules import (
    EpisodeFacts,
    endangerment_flags,
    learned,
    obligations_to_open,
    report_clock_times,
    says_new_facts,
)
from rules.notices import check_notification
from shared.events import (
    EpisodeLocatedData,
    EpisodeReported,
    EpisodeUpdatedData,
    NotificationRecordedData,
    ScreeningCompletedData,
)
from shared.policy import ClockStart, Policy, Trigger

_OPENED_BY: dict[Trigger, OpenedBy] = {
    Trigger.REPORTED: "reported",
    Trigger.LOCATED: "located",
    Trigger.SCREENING: "screening",
}


@dataclass(frozen=True)
class NoticeOutcome:
    """What a recorded notice does to one open obligation: satisfies it (on time or
    late), or leaves it waiting with a reason."""

    obligation: OpenObligation
    satisfied: bool
    waiting_reason: str | None
    on_time: bool


@dataclass(frozen=True)
class Closing:
    episode: EpisodeRecord
    moot: tuple[OpenObligation, ...]
    reason: str


def reported_episode(report: EpisodeReported) -> EpisodeRecord:
    """The episode as the notifier keeps it from its report."""
    return EpisodeRecord(
        id=report.episode_id,
        county_code=report.county_code,
        child_initials=initials(report.child.first_name, report.child.last_name),
        staff={
            "caseworker": report.caseworker.model_dump(mode="json"),
            "supervisor": report.supervisor.model_dump(mode="json"),
        },
        facts=StoredFacts(
            EpisodeFacts.of(report), endangerment_flags(report.endangerments)
        ),
        times=report_clock_times(report),
        status=EpisodeStatus.MISSING,
    )


def on_located(episode: EpisodeRecord, located: EpisodeLocatedData) -> EpisodeRecord:
    """The child is found: the recovery clocks start, and reporting duties that new
    facts would open are no longer owed."""
    times = {**episode.times, ClockStart.LOCATED_AT: located.located_at}
    return replace(episode, times=times, status=EpisodeStatus.LOCATED)


def on_screening(
    episode: EpisodeRecord, screening: ScreeningCompletedData
) -> EpisodeRecord:
    """A trafficking screening: its clock starts, and what it found is a fact."""
    times = {**episode.times, ClockStart.SCREENING_COMPLETED_AT: screening.completed_at}
    found = {"trafficking_indicated": screening.trafficking_indicated}
    facts = replace(episode.facts, facts=episode.facts.facts.model_copy(update=found))
    return replace(episode, times=times, facts=facts)


def on_closed(
    episode: EpisodeRecord, open_obligations: Sequence[OpenObligation], reason: str
) -> Closing:
    """Closing the episode makes every duty still open moot (a breach stays on
    record in the event); nothing opens for it any more."""
    return Closing(
        replace(episode, status=EpisodeStatus.CLOSED),
        tuple(open_obligations),
        f"episode closed: {reason}",
    )


def changes_facts(update: EpisodeUpdatedData) -> bool:
    """Whether an update says anything the rules' conditions read."""
    return says_new_facts(update)


def learn(stored: StoredFacts, update: EpisodeUpdatedData) -> StoredFacts:
    """The facts after an update: its endangerment flags merge over those known, an
    endangerment once known stays known, and it may say the child is an Indian
    child."""
    return StoredFacts(*learned(stored.facts, stored.flags, update))


def to_open(
    policy: Policy,
    episode: EpisodeRecord,
    trigger: Trigger,
    *,
    now: datetime,
    learned_at: datetime | None = None,
    new_id: Callable[[], UUID] = uuid4,
) -> list[NewObligation]:
    """The obligations the rules in force for the episode's county ask for on
    ``trigger``, due from the episode's clocks (or from ``learned_at``, when an
    update made a rule apply), with their timing frozen from ``policy``. One already
    opened for the episode is the repository's to refuse (one per episode and kind).
    """
    defaults = policy.document.defaults
    drafts = obligations_to_open(
        policy.obligations_for(episode.county_code),
        trigger,
        episode.facts.facts,
        episode.times,
        learned_at=learned_at,
        calendars=policy.document.calendars,
    )
    return [
        NewObligation(
            id=new_id(),
            episode_id=episode.id,
            county_code=episode.county_code,
            jurisdiction=policy.jurisdiction_of(episode.county_code),
            rule=draft.rule,
            chain=policy.chain(draft.rule.chain),
            opened_at=now,
            opened_by="update" if learned_at is not None else _OPENED_BY[trigger],
            clock_start=draft.clock_start,
            due_at=draft.due_at,
            policy_digest=policy.digest,
            reminders=tuple(
                draft.rule.reminders
                if draft.rule.reminders is not None
                else defaults.reminders
            ),
            breach_repeat=defaults.breach_repeat,
            snooze=defaults.snooze,
        )
        for draft in drafts
    ]


def on_notice(
    open_obligations: Sequence[OpenObligation],
    notice: NotificationRecordedData,
    times: ClockTimes,
    missing_items: Collection[str] = (),
) -> list[NoticeOutcome]:
    """What a recorded notice does to each of the episode's open obligations; those
    it does not concern are left out."""
    outcomes = []
    for obligation in open_obligations:
        satisfied_by = obligation.satisfied_by
        not_before = times.get(satisfied_by.not_before)
        checked = check_notification(
            satisfied_by,
            notice,
            not_before=not_before,
            report_items=obligation.report_items,
            missing_items=missing_items,
        )
        if checked is not None:
            on_time = notice.notified_at <= obligation.due_at
            outcomes.append(
                NoticeOutcome(
                    obligation, checked.satisfied, checked.waiting_reason, on_time
                )
            )
    return outcomes


def initials(first_name: str, last_name: str) -> str:
    """What alerts name the child by: never the full name."""
    return f"{first_name.strip()[:1].upper()}.{last_name.strip()[:1].upper()}."
