"""``mfc policy what-if``: what a candidate policy would have meant for past episodes.

The episodes come from an audit export (the JSON lines of
``GET /v1/audit/entries?format=jsonl``, made by an auditor who may see personal data:
ages and endangerments decide which rules apply). Each episode's events are replayed,
in trail order and at their own times, through the notifier's own handlers on its
in-memory port, twice: under the policy it ran under (the file whose sha256 matches
the ``policy_digest`` its obligations recorded) and under the candidate. The
obligation events each replay emits are classified by the audit service's own
compliance rules (met, late, missing, pending, moot), so the figures are the ones
the compliance report would have shown. Nothing is written anywhere: no service,
database or topic is touched.
"""

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.domain.compliance import obligations_from
from audit.domain.compliance import report as compliance_report
from audit.domain.records import ObligationRecord
from notifier.handlers import Deps
from notifier.handlers.obligations import apply_episode_event
from notifier.ports import FakeNotifier
from shared import topics
from shared.clock import ManualClock
from shared.events import CloudEvent, EventType
from shared.policy import Policy
from shared.published import ObligationEvent

# Personal fields the rules read; an export without them cannot be replayed.
_NEEDED = ("date_of_birth", "endangerments", "indian_child")


class WhatIfError(ValueError):
    """The export or the period cannot be replayed; the message says why and what to do."""


@dataclass
class EpisodeTrail:
    """One episode's canonical events in log order, and what the notifier recorded."""

    episode_id: str
    county_code: str
    learned_at: datetime
    events: list[CloudEvent] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    """The notifier's obligation events for the episode, as the trail holds them."""

    @property
    def digest(self) -> str | None:
        """The policy its obligations were opened under (the first recorded)."""
        for event in self.recorded:
            if event["type"] == ObligationEvent.OPENED.value:
                digest = event["data"].get("policy_digest")
                return str(digest) if digest else None
        return None


def read_trail(
    lines: Iterable[str],
    *,
    origin: str = "<export>",
    left_out: list[str] | None = None,
) -> list[EpisodeTrail]:
    """The episodes of an audit export, in the order they were reported;
    ``left_out`` collects the ids of events whose episode's report is not in it.

    Raises:
        WhatIfError: a line is not an export entry, or an episode's events were
            redacted (the export was made without ``auditor_pii``).
    """
    entries = _entries(lines, origin)
    episodes: dict[str, EpisodeTrail] = {}
    recorded: dict[str, list[dict[str, Any]]] = defaultdict(list)
    orphans: list[str] = []
    for number, entry in entries:
        topic, document = entry["topic"], entry["event"]
        if topic == topics.OBLIGATIONS:
            recorded[str(document["data"].get("episode_id"))].append(document)
        if topic != topics.EPISODES:
            continue
        if entry.get("redacted"):
            raise WhatIfError(
                f"{origin}:{number}: the episode events are redacted; the what-if "
                f"needs {', '.join(_NEEDED)} to decide which rules apply. Export the "
                "trail with a token that has the auditor_pii role."
            )
        try:
            event = CloudEvent.model_validate(document)
            if not _add(episodes, event):
                orphans.append(event.id)
        except (ValueError, KeyError) as exc:
            raise WhatIfError(
                f"{origin}:{number}: not an episode event ({exc})"
            ) from exc
    if left_out is not None:
        left_out += orphans
    for episode_id, events in recorded.items():
        if episode_id in episodes:
            episodes[episode_id].recorded = events
    return sorted(episodes.values(), key=lambda e: (e.learned_at, e.episode_id))


def _entries(lines: Iterable[str], origin: str) -> list[tuple[int, dict[str, Any]]]:
    """The export's entries in log order (by ``seq``, whatever order the lines came
    in), each event once (a concatenated or re-paged export may repeat some)."""
    entries: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            event_id = str(entry["event"]["id"])
            if not isinstance(entry["topic"], str):
                raise TypeError("topic is not a text")
        except (ValueError, KeyError, TypeError) as exc:
            raise WhatIfError(f"{origin}:{number}: not an audit export entry") from exc
        entries.setdefault(event_id, (number, entry))
    return sorted(entries.values(), key=lambda e: (e[1].get("seq", 0), e[0]))


def _add(episodes: dict[str, EpisodeTrail], event: CloudEvent) -> bool:
    """File the event under its episode; False when its report is not known."""
    episode_id = str(event.data.get("episode_id"))
    if event.type == EventType.EPISODE_REPORTED:
        episodes.setdefault(
            episode_id,
            EpisodeTrail(
                episode_id,
                str(event.data["county_code"]),
                datetime.fromisoformat(str(event.data["agency_learned_at"])),
            ),
        ).events.append(event)
        return True
    if episode_id in episodes:  # a later event of an episode reported before
        episodes[episode_id].events.append(event)
        return True
    return False


async def replay(trail: EpisodeTrail, policy: Policy) -> list[ObligationRecord]:
    """The obligations the notifier's handlers open, satisfy and close for this
    episode's events under ``policy``, as the compliance report reads them."""
    clock = ManualClock(trail.events[0].time)
    deps = Deps.detached(policy, clock, source="mfc/what-if")
    port = FakeNotifier()
    for event in trail.events:
        clock.set(event.time)
        await apply_episode_event(port, event, deps)
    emitted = [
        json.loads(o.event.model_dump_json())
        for o in port.events
        if o.topic == topics.OBLIGATIONS
    ]
    records = obligations_from(emitted)
    for record in records:
        # Steps are not replayed: a duty closed after its due time had breached.
        if record.closed_at is not None:
            record.breached_before_close = record.closed_at > record.due_at
    return records


@dataclass(frozen=True)
class Change:
    """One obligation of one episode under the policy in force and the candidate."""

    episode_id: str
    county_code: str
    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def change(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        shift = self.due_shift
        return "earlier" if shift < 0 else "later" if shift > 0 else "same"

    @property
    def due_shift(self) -> float:
        if self.before is None or self.after is None:
            return 0.0
        before = datetime.fromisoformat(self.before["due_at"])
        return (datetime.fromisoformat(self.after["due_at"]) - before).total_seconds()

    def row(self) -> dict[str, Any]:
        before, after = self.before or {}, self.after or {}
        return {
            "episode_id": self.episode_id,
            "county_code": self.county_code,
            "kind": self.kind,
            "change": self.change,
            "due_shift_seconds": self.due_shift,
            "in_force_due_at": before.get("due_at"),
            "candidate_due_at": after.get("due_at"),
            "notified_at": after.get("notified_at") or before.get("notified_at"),
            "in_force_outcome": before.get("outcome"),
            "candidate_outcome": after.get("outcome"),
        }


CSV_COLUMNS = (
    "episode_id",
    "county_code",
    "kind",
    "change",
    "due_shift_seconds",
    "in_force_due_at",
    "candidate_due_at",
    "notified_at",
    "in_force_outcome",
    "candidate_outcome",
)


@dataclass
class WhatIf:
    """Both views of a period and what differs."""

    candidate: Policy
    as_of: datetime
    episodes: int
    in_force: dict[str, Any]
    """The compliance report under the policies the episodes ran under."""
    under_candidate: dict[str, Any]
    changes: list[Change]
    ran_under: dict[str, int]
    """Episodes per policy digest they were replayed under as in force."""
    unknown_digests: dict[str, int]
    """Recorded digests no given policy file has, with their episode counts."""
    replay_differs: list[str]
    """Episodes whose replay under the policy in force differs from what the
    notifier recorded (kinds or due times): the replay is not to be trusted there."""

    def differing(self) -> list[Change]:
        """Changes that matter: a due time moved, an obligation added or removed, or
        the outcome differs."""
        return [
            c
            for c in self.changes
            if c.change != "same"
            or (c.before or {}).get("outcome") != (c.after or {}).get("outcome")
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate_digest": self.candidate.digest,
            "as_of": self.as_of.isoformat(),
            "episodes": self.episodes,
            "ran_under": self.ran_under,
            "unknown_digests": self.unknown_digests,
            "replay_differs_from_recorded": self.replay_differs,
            "totals": {
                "in_force": self.in_force["total"],
                "candidate": self.under_candidate["total"],
            },
            "by_kind_and_county": {
                "in_force": self.in_force["by_kind_and_county"],
                "candidate": self.under_candidate["by_kind_and_county"],
            },
            "changes": [c.row() for c in self.differing()],
        }


async def what_if(
    trails: Sequence[EpisodeTrail],
    *,
    candidate: Policy,
    in_force: Sequence[Policy],
    as_of: datetime | None = None,
    learned_from: datetime | None = None,
    learned_to: datetime | None = None,
    counties: Sequence[str] | None = None,
) -> WhatIf:
    """Replay the episodes the agency learned of in ``[learned_from, learned_to)``
    (and in ``counties``) under the policy each ran under and under ``candidate``."""
    by_digest = {policy.digest: policy for policy in in_force}
    chosen = [
        t
        for t in trails
        if (learned_from is None or t.learned_at >= learned_from)
        and (learned_to is None or t.learned_at < learned_to)
        and (not counties or t.county_code in counties)
    ]
    before: list[ObligationRecord] = []
    after: list[ObligationRecord] = []
    ran_under: dict[str, int] = defaultdict(int)
    unknown: dict[str, int] = defaultdict(int)
    differs = []
    for trail in chosen:
        policy = by_digest.get(trail.digest or "", in_force[0])
        if trail.digest is not None and trail.digest not in by_digest:
            unknown[trail.digest] += 1
        ran_under[policy.digest] += 1
        replayed = await replay(trail, policy)
        if trail.recorded and _due_times(replayed) != _due_times(
            obligations_from(trail.recorded)
        ):
            differs.append(trail.episode_id)
        before += replayed
        after += await replay(trail, candidate)
    # Outcomes as of the chosen episodes' last event, unless told otherwise.
    as_of = as_of or max(
        (event.time for t in chosen for event in t.events), default=datetime.now(UTC)
    )
    in_force_report = compliance_report(before, now=as_of)
    candidate_report = compliance_report(after, now=as_of)
    return WhatIf(
        candidate=candidate,
        as_of=as_of,
        episodes=len(chosen),
        in_force=in_force_report,
        under_candidate=candidate_report,
        changes=_changes(in_force_report, candidate_report),
        ran_under=dict(ran_under),
        unknown_digests=dict(unknown),
        replay_differs=differs,
    )


def _due_times(records: Iterable[ObligationRecord]) -> dict[str, datetime]:
    return {r.kind: r.due_at for r in records}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    def rows(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (row["episode_id"], row["kind"]): row
            for episode in report["episodes"]
            for row in episode["obligations"]
        }

    old, new = rows(before), rows(after)
    return [
        Change(
            episode_id=key[0],
            county_code=(old.get(key) or new[key])["county_code"],
            kind=key[1],
            before=old.get(key),
            after=new.get(key),
        )
        for key in sorted(old.keys() | new.keys())
    ]


def export_lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8") as lines:
        yield from lines


_FIGURES = (
    ("required", "obligations owed"),
    ("met", "met on time"),
    ("late", "late"),
    ("missing", "missing (no notice, past due)"),
    ("pending", "not yet due"),
    ("moot", "closed before due"),
)
_CHANGE_WORDS = {
    "earlier": "due earlier",
    "later": "due later",
    "added": "added",
    "removed": "removed",
    "same": "same due time",
}


def render_table(result: WhatIf) -> str:
    """The comparison as a person reads it on a terminal."""
    old, new = result.in_force["total"], result.under_candidate["total"]
    lines = [
        f"What-if: candidate policy {result.candidate.origin} "
        f"(sha256 {result.candidate.digest[:12]}), {result.episodes} episodes, "
        f"outcomes as of {result.as_of.isoformat()}",
        "",
        f"{'':32}{'in force':>10}{'candidate':>11}{'change':>8}",
    ]
    for key, words in _FIGURES:
        lines.append(f"{words:32}{old[key]:>10}{new[key]:>11}{new[key] - old[key]:>+8}")
    lines.append(
        f"{'on-time share':32}{_share(old['on_time_share']):>10}"
        f"{_share(new['on_time_share']):>11}"
    )
    lines += _by_duty(result)
    differing = result.differing()
    lines += [
        "",
        f"{len(differing)} obligations change:" if differing else "Nothing changes.",
    ]
    for change in differing:
        row = change.row()
        before, after = row["in_force_outcome"], row["candidate_outcome"]
        outcome = (
            f"{before} either way"
            if before == after
            else f"{before or '-'} -> {after or '-'}"
        )
        lines.append(
            f"  {row['episode_id']}  {row['county_code']}  {row['kind']}: "
            f"{_CHANGE_WORDS[row['change']]}{_shift(change)}; due "
            f"{row['candidate_due_at'] or '-'} (in force: {row['in_force_due_at'] or '-'}); "
            f"{outcome}"
        )
    lines += _warnings(result)
    return "\n".join(lines) + "\n"


def _by_duty(result: WhatIf) -> list[str]:
    """Per duty and county whose figures differ: owed, met, late, missing."""

    def groups(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(g["kind"], g["county_code"]): g for g in report["by_kind_and_county"]}

    old, new = groups(result.in_force), groups(result.under_candidate)
    empty = dict.fromkeys(("required", "met", "late", "missing"), 0)

    def figures(group: dict[str, Any]) -> str:
        return "{required} owed, {met} met, {late} late, {missing} missing".format(
            **group
        )

    lines = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, empty), new.get(key, empty)
        if figures(before) != figures(after):
            lines.append(
                f"  {key[0]} in {key[1]}: {figures(before)} -> {figures(after)}"
            )
    return ["", "By duty and county (in force -> candidate):", *lines] if lines else []


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _shift(change: Change) -> str:
    hours = change.due_shift / 3600
    return f" by {abs(hours):g} h" if hours else ""


def _warnings(result: WhatIf) -> list[str]:
    lines = []
    for digest, count in sorted(result.unknown_digests.items()):
        lines.append(
            f"warning: {count} episodes ran under a policy not given (sha256 "
            f"{digest[:12]}); they were replayed under the first --policy file. "
            "Pass that version with --policy to compare against what really applied."
        )
    if result.replay_differs:
        lines.append(
            f"warning: for {len(result.replay_differs)} episodes the replay under the "
            "policy in force differs from what the notifier recorded (first: "
            f"{result.replay_differs[0]}); check them by hand."
        )
    return ["", *lines] if lines else []


def render_csv(result: WhatIf) -> str:
    """Every obligation of the period under both policies, one row each."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(change.row() for change in result.changes)
    return buffer.getvalue()
