"""The derived view: which obligations an episode should have had, computed from the
episode events in the trail and the policy of record, without trusting the notifier.
Pure.

The policy of record is the one intake accepted the report under (its digest is on
``mfc.episode.reported``; the file is in the trail as ``mfc.policy.adopted``). The
rules package decides, as the law reads, which duties each event opens and when they
are due, and whether a recorded notice answers them; this module only replays the
episode's events in log order. The notifier's own code, database and delivery are
never consulted, so a duty the notifier never opened (a bug, a policy it was wrongly
given, an event it never received) shows up as a difference between the two views.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from audit.domain.records import ObligationRecord
from rules import (
    EndangermentFlags,
    EpisodeFacts,
    check_notification,
    endangerment_flags,
    learned,
    obligations_to_open,
    report_clock_times,
    says_new_facts,
)
from shared.events import (
    CANONICAL_DATA,
    EpisodeClosed,
    EpisodeLocated,
    EpisodeReported,
    EpisodeUpdated,
    EventType,
    NotificationRecorded,
    ScreeningCompleted,
)
from shared.policy import ClockStart, Policy, Trigger

EPISODE_TYPES = tuple(str(t) for t in CANONICAL_DATA)
"""The episode events the derived view reads."""


@dataclass
class Unchecked:
    """An episode the derived view could not be computed for, and why."""

    episode_id: str
    county_code: str
    reason: str


@dataclass
class _Episode:
    """One episode as the replay knows it so far."""

    county_code: str
    policy: Policy
    facts: EpisodeFacts
    flags: EndangermentFlags
    times: dict[ClockStart, datetime | None]
    located: bool = False
    closed: bool = False
    duties: dict[str, ObligationRecord] = field(default_factory=dict)


@dataclass
class Derivation:
    """The duties the events and the policy of record ask for, and the episodes
    that could not be checked."""

    duties: list[ObligationRecord]
    unchecked: list[Unchecked]


def derive(
    events: Iterable[dict[str, Any]], policies: Mapping[str, Policy]
) -> Derivation:
    """Replay episode events (CloudEvent documents, in log order) under the
    policies of record (``policies`` by digest)."""
    episodes: dict[str, _Episode] = {}
    unchecked: dict[str, Unchecked] = {}
    for event in events:
        data = event.get("data") or {}
        episode_id = str(data.get("episode_id"))
        if episode_id in unchecked:
            continue
        if event.get("type") == EventType.EPISODE_REPORTED:
            started = _start(event, policies)
            if isinstance(started, Unchecked):
                unchecked[episode_id] = started
            else:
                episodes.setdefault(episode_id, started)
            continue
        episode = episodes.get(episode_id)
        if episode is None:
            continue  # its report is not among the events (another county)
        try:
            _apply(episode, event)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            # The error's kind only: its text may quote a child's details.
            unchecked[episode_id] = Unchecked(
                episode_id,
                episode.county_code,
                f"its {event.get('type')} event could not be read "
                f"({type(exc).__name__})",
            )
    duties = [
        duty
        for episode_id, episode in episodes.items()
        if episode_id not in unchecked
        for duty in episode.duties.values()
    ]
    return Derivation(duties, list(unchecked.values()))


def _start(
    event: dict[str, Any], policies: Mapping[str, Policy]
) -> _Episode | Unchecked:
    data = event.get("data") or {}
    episode_id, county = str(data.get("episode_id")), str(data.get("county_code"))
    try:
        report = EpisodeReported.model_validate(data)
    except ValidationError as exc:
        redacted = "[redacted]" in str(data)
        reason = (
            "the report's personal fields are redacted in this export (an export "
            "made with the auditor_pii grant carries them)"
            if redacted
            else f"the report could not be read ({exc.errors()[0]['type']})"
        )
        return Unchecked(episode_id, county, reason)
    if report.policy_digest is None:
        return Unchecked(
            episode_id,
            county,
            "the report names no policy of record (reported before intake stamped it)",
        )
    policy = policies.get(report.policy_digest)
    if policy is None:
        return Unchecked(
            episode_id,
            county,
            f"the policy of record (sha256 {report.policy_digest}) is not among "
            "the trail's policies",
        )
    episode = _Episode(
        county_code=report.county_code,
        policy=policy,
        facts=EpisodeFacts.of(report),
        flags=endangerment_flags(report.endangerments),
        times=dict(report_clock_times(report)),
    )
    try:
        _open(episode, episode_id, Trigger.REPORTED)
    except ValueError as exc:  # a rule the policy cannot evaluate for it
        return Unchecked(episode_id, county, f"its duties could not be derived: {exc}")
    return episode


def _apply(episode: _Episode, event: dict[str, Any]) -> None:
    """One event after the report: what it changes, what it opens or answers."""
    kind, data = event.get("type"), event.get("data") or {}
    episode_id = str(data["episode_id"])
    if kind == EventType.EPISODE_UPDATED:
        _learn(episode, episode_id, EpisodeUpdated.model_validate(data), event)
    elif kind == EventType.EPISODE_LOCATED:
        located = EpisodeLocated.model_validate(data)
        episode.times[ClockStart.LOCATED_AT] = located.located_at
        episode.located = True
        _open(episode, episode_id, Trigger.LOCATED)
    elif kind == EventType.SCREENING_COMPLETED:
        screening = ScreeningCompleted.model_validate(data)
        episode.times[ClockStart.SCREENING_COMPLETED_AT] = screening.completed_at
        found = {"trafficking_indicated": screening.trafficking_indicated}
        episode.facts = episode.facts.model_copy(update=found)
        _open(episode, episode_id, Trigger.SCREENING)
    elif kind == EventType.NOTIFICATION_RECORDED:
        _answer(episode, NotificationRecorded.model_validate(data), str(event["id"]))
    elif kind == EventType.EPISODE_CLOSED:
        _close(episode, EpisodeClosed.model_validate(data))


def _learn(
    episode: _Episode, episode_id: str, update: EpisodeUpdated, event: dict[str, Any]
) -> None:
    """New facts (an endangerment, an Indian child) may make more duties apply while
    the child is missing; their clocks start when the agency learned them."""
    facts, flags = learned(episode.facts, episode.flags, update)
    episode.facts, episode.flags = facts, flags or {}
    if says_new_facts(update) and not episode.located and not episode.closed:
        learned_at = datetime.fromisoformat(str(event["time"]))
        _open(episode, episode_id, Trigger.REPORTED, learned_at=learned_at)


def _open(
    episode: _Episode,
    episode_id: str,
    trigger: Trigger,
    *,
    learned_at: datetime | None = None,
) -> None:
    """The duties the policy of record asks for on ``trigger``; one per kind."""
    policy = episode.policy
    drafts = obligations_to_open(
        policy.obligations_for(episode.county_code),
        trigger,
        episode.facts,
        episode.times,
        learned_at=learned_at,
        calendars=policy.document.calendars,
    )
    for draft in drafts:
        episode.duties.setdefault(
            draft.rule.id,
            ObligationRecord(
                obligation_id="",
                episode_id=episode_id,
                county_code=episode.county_code,
                kind=draft.rule.id,
                jurisdiction=policy.jurisdiction_of(episode.county_code),
                clock_start=draft.clock_start,
                due_at=draft.due_at,
                policy_digest=policy.digest,
            ),
        )


def _still_open(episode: _Episode) -> list[ObligationRecord]:
    return [
        d
        for d in episode.duties.values()
        if d.satisfied_at is None and d.closed_at is None
    ]


def _answer(episode: _Episode, notice: NotificationRecorded, event_id: str) -> None:
    """A recorded notice satisfies each open duty whose rule it answers."""
    rules = {r.id: r for r in episode.policy.obligations_for(episode.county_code)}
    for duty in _still_open(episode):
        rule = rules.get(duty.kind)
        if rule is None:
            continue
        not_before = episode.times.get(rule.satisfied_by.not_before)
        checked = check_notification(
            rule.satisfied_by,
            notice,
            not_before=not_before,
            report_items=rule.report_items,
            missing_items=notice.missing_items,
        )
        if checked is None:
            continue
        if checked.satisfied:
            duty.satisfied_at = notice.notified_at
            duty.notice_event_id = event_id
        else:
            duty.waiting_reason = checked.waiting_reason


def _close(episode: _Episode, closed: EpisodeClosed) -> None:
    """Closing leaves no duty owed; one already past due stays a breach."""
    episode.closed = True
    for duty in _still_open(episode):
        duty.closed_at = closed.closed_at
        duty.breached_before_close = closed.closed_at > duty.due_at


NEVER_OPENED = "duty never opened"
OTHER_DUE = "opened with a different due time"
NO_MATCHING_NOTICE = "closed without a matching notice"
NOT_ASKED = "opened, but the policy of record does not ask for it"
NOT_COUNTED = "a matching notice the notifier did not count"
NOT_CHECKED = "not cross-checked"
FINDINGS = (
    NEVER_OPENED,
    OTHER_DUE,
    NO_MATCHING_NOTICE,
    NOT_COUNTED,
    NOT_ASKED,
    NOT_CHECKED,
)

_CLOSED = ("met", "late", "moot")


@dataclass(frozen=True)
class Pair:
    """One episode's obligation of one kind in both views, and what their
    difference says (None: they agree)."""

    notifier: ObligationRecord | None
    derived: ObligationRecord | None
    finding: str | None
    reason: str | None = None

    @property
    def either(self) -> ObligationRecord:
        found = self.derived or self.notifier
        assert found is not None  # a pair has at least one side
        return found


def pairs(
    notifier: Iterable[ObligationRecord], derivation: Derivation, *, now: datetime
) -> list[Pair]:
    """Per episode and kind: the notifier's obligation beside the derived duty.

    Where several notifiers opened the same kind (a test bed, a policy rollout),
    the one under the policy of record is compared; the others stay in the
    notifier's view."""
    derived = {(d.episode_id, d.kind): d for d in derivation.duties}
    skipped = {u.episode_id: u.reason for u in derivation.unchecked}
    opened: dict[tuple[str, str], ObligationRecord] = {}
    for record in notifier:
        key = (record.episode_id, record.kind)
        duty, held = derived.get(key), opened.get(key)
        if held is None or (
            duty is not None
            and record.policy_digest == duty.policy_digest != held.policy_digest
        ):
            opened[key] = record
    found = []
    for key in sorted(derived.keys() | opened.keys()):
        mine, duty = opened.get(key), derived.get(key)
        if duty is None and key[0] in skipped:
            found.append(Pair(mine, None, NOT_CHECKED, skipped[key[0]]))
        else:
            found.append(Pair(mine, duty, _finding(mine, duty, now)))
    return found


def _finding(
    record: ObligationRecord | None, duty: ObligationRecord | None, now: datetime
) -> str | None:
    if record is None:
        return NEVER_OPENED
    if duty is None:
        return NOT_ASKED
    if record.due_at != duty.due_at:
        return OTHER_DUE
    mine, derived = record.outcome(now), duty.outcome(now)
    if mine in _CLOSED and derived not in _CLOSED:
        return NO_MATCHING_NOTICE
    if derived in ("met", "late") and mine not in _CLOSED:
        return NOT_COUNTED
    return None
