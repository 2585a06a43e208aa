"""The compliance report, derived from the trail alone. Pure.

It has two views. The notifier's: every number comes from the notifier's
``mfc.obligation.*`` events in the log, so an auditor holding an export can
recompute it. The derived view (``audit.domain.crosscheck``) recomputes which duties
should have existed from the episode events and the policy of record, and the
cross-check names every difference. In the notifier's view, ``opened`` says what was required, by
when, and from which clock start; ``satisfied`` when the notice was given; ``moot``
that the episode closed first. An obligation is

* **met**: the notice was given at or before its due time;
* **late**: the notice was given after it;
* **incomplete** ("notified, incomplete"): past its due time, the only notices given
  lacked what the rule requires (a report item, a reference number); the waiting
  reason names it;
* **missing**: no notice, and the due time has passed (also when the episode was
  closed after the breach);
* **pending**: no notice yet, not yet due (not counted in the on-time share);
* **moot**: the episode closed before the due time (not counted either).
"""

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.domain import crosscheck
from audit.domain.crosscheck import Derivation, Pair
from audit.domain.records import ObligationRecord
from shared import topics
from shared.policy import Policy, PolicyError, parse_policy
from shared.published import ObligationEvent, PolicyEvent

OPENED, SATISFIED, MOOT, WAITING = (
    ObligationEvent.OPENED.value,
    ObligationEvent.SATISFIED.value,
    ObligationEvent.MOOT.value,
    ObligationEvent.WAITING.value,
)
TYPES = (OPENED, SATISFIED, MOOT, WAITING)
POLICY_ADOPTED = PolicyEvent.ADOPTED.value
READS = {
    topics.OBLIGATIONS: TYPES,
    topics.EPISODES: crosscheck.EPISODE_TYPES,
    topics.POLICIES: (POLICY_ADOPTED,),
}
"""What the report reads, by topic: the notifier's obligation events, the canonical
episode events (not a county's inbound ones) and the policy files."""


def reads(topic: str, event_type: str | None) -> bool:
    return event_type in READS.get(topic, ())


OUTCOMES = ("met", "late", "incomplete", "missing", "pending", "moot")


def obligations_from(events: Iterable[dict[str, Any]]) -> list[ObligationRecord]:
    """Fold obligation events (CloudEvent documents in log order) into records."""
    records: dict[str, ObligationRecord] = {}
    for event in events:
        data = event.get("data") or {}
        obligation_id = data.get("obligation_id")
        if not isinstance(obligation_id, str):
            continue
        if event["type"] == OPENED:
            records[obligation_id] = ObligationRecord(
                obligation_id=obligation_id,
                episode_id=str(data["episode_id"]),
                county_code=str(data["county_code"]),
                kind=str(data["kind"]),
                jurisdiction=data.get("jurisdiction"),
                clock_start=datetime.fromisoformat(data["clock_start"]),
                due_at=datetime.fromisoformat(data["due_at"]),
                policy_digest=data.get("policy_digest"),
            )
            continue
        record = records.get(obligation_id)
        if record is None:
            continue
        if event["type"] == SATISFIED:
            record.satisfied_at = datetime.fromisoformat(data["satisfied_at"])
            record.notice_event_id = data.get("notification_event_id")
        elif event["type"] == WAITING:
            record.waiting_reason = str(data.get("reason"))
        elif event["type"] == MOOT:
            record.closed_at = datetime.fromisoformat(event["time"])
            record.breached_before_close = bool(data.get("was_breached"))
    return list(records.values())


@dataclass(frozen=True)
class AdoptedFile:
    """The policy file one ``mfc.policy.adopted`` event carries, as the trail holds it."""

    data: Mapping[str, Any]

    @property
    def digest(self) -> str:
        digest = self.data.get("digest")
        return digest if isinstance(digest, str) else ""

    @property
    def content(self) -> str:
        content = self.data.get("content")
        return content if isinstance(content, str) else ""

    def fault(self) -> str | None:
        """Why this is not the file its digest names; None when it is."""
        if not self.content or not self.digest:
            return "it holds no policy content and digest"
        actual = hashlib.sha256(self.content.encode()).hexdigest()
        if actual != self.digest:
            return (
                f"the policy content's sha256 is {actual}, "
                f"not the digest it claims ({self.digest})"
            )
        return None


def adopted_files(events: Iterable[Mapping[str, Any]]) -> Iterator[AdoptedFile]:
    """Each policy file the events announce, in order, repeats included."""
    for event in events:
        if event.get("type") == POLICY_ADOPTED:
            yield AdoptedFile(event.get("data") or {})


def policies_of(events: Iterable[dict[str, Any]]) -> dict[str, Policy]:
    """The policy files announced in the trail, by digest: those whose content
    matches its digest and that this version can read."""
    found: dict[str, Policy] = {}
    for file in adopted_files(events):
        if file.fault() is not None or file.digest in found:
            continue
        try:
            found[file.digest] = parse_policy(
                file.content.encode(), origin=str(file.data.get("file_name"))
            )
        except PolicyError:
            continue  # the derived view names the episodes it cannot check
    return found


def report_of_events(
    events: Iterable[dict[str, Any]],
    *,
    now: datetime,
    counties: Collection[str] | None = None,
    clock_from: datetime | None = None,
    clock_to: datetime | None = None,
) -> dict[str, Any]:
    """The whole report (both views) from the trail's events in log order: what
    the service answers online and ``mfc audit compliance`` computes offline."""
    events = list(events)
    derivation = crosscheck.derive(
        (e for e in events if e.get("type") in crosscheck.EPISODE_TYPES),
        policies_of(events),
    )
    return report(
        obligations_from(e for e in events if e.get("type") in TYPES),
        now=now,
        counties=counties,
        clock_from=clock_from,
        clock_to=clock_to,
        derivation=derivation,
    )


def _summary(outcomes: list[str]) -> dict[str, Any]:
    counts = {name: outcomes.count(name) for name in OUTCOMES}
    decided = counts["met"] + counts["late"] + counts["incomplete"] + counts["missing"]
    return {
        **counts,
        "required": decided + counts["pending"],
        "on_time_share": round(counts["met"] / decided, 4) if decided else None,
    }


def report(
    records: Iterable[ObligationRecord],
    *,
    now: datetime,
    counties: Collection[str] | None = None,
    clock_from: datetime | None = None,
    clock_to: datetime | None = None,
    derivation: Derivation | None = None,
) -> dict[str, Any]:
    """Per obligation, per episode, per (kind, county) and in total; with
    ``derivation``, the cross-check of the notifier's view against it.

    ``counties`` (None: all), ``clock_from`` and ``clock_to`` select obligations by
    county and by the time their clock started (``[from, to)``).
    """

    def chosen_(record: ObligationRecord) -> bool:
        return (
            (counties is None or record.county_code in counties)
            and (clock_from is None or record.clock_start >= clock_from)
            and (clock_to is None or record.clock_start < clock_to)
        )

    records = list(records)
    chosen = sorted(
        filter(chosen_, records), key=lambda r: (r.clock_start, r.episode_id, r.kind)
    )
    rows = [r.row(now) for r in chosen]
    by_episode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        by_episode[row["episode_id"]].append(row)
        by_group[(row["kind"], row["county_code"])].append(row["outcome"])
    result: dict[str, Any] = {
        "as_of": now.isoformat(),
        "episodes": [
            {
                "episode_id": episode_id,
                "county_code": items[0]["county_code"],
                "obligations": items,
                **_summary([i["outcome"] for i in items]),
            }
            for episode_id, items in by_episode.items()
        ],
        "by_kind_and_county": [
            {"kind": kind, "county_code": code, **_summary(outcomes)}
            for (kind, code), outcomes in sorted(by_group.items())
        ],
        "total": _summary([row["outcome"] for row in rows]),
    }
    if derivation is not None:
        pairs = crosscheck.pairs(records, derivation, now=now)
        shown = [p for p in pairs if chosen_(p.either)]
        unchecked = [
            u
            for u in derivation.unchecked
            if counties is None or u.county_code in counties
        ]
        result["crosscheck"] = _crosscheck(shown, unchecked, now)
    return result


def _crosscheck(
    pairs: list[Pair], unchecked: list[crosscheck.Unchecked], now: datetime
) -> dict[str, Any]:
    rows = [_pair_row(p, now) for p in sorted(pairs, key=_pair_order)]
    found = [row["finding"] for row in rows if row["finding"]]
    return {
        "rows": rows,
        "findings": {name: found.count(name) for name in crosscheck.FINDINGS},
        "agree": len(rows) - len(found),
        "unchecked_episodes": [
            {
                "episode_id": u.episode_id,
                "county_code": u.county_code,
                "reason": u.reason,
            }
            for u in sorted(unchecked, key=lambda u: u.episode_id)
        ],
    }


def _pair_order(pair: Pair) -> tuple[datetime, str, str]:
    either = pair.either
    return (either.clock_start, either.episode_id, either.kind)


def _pair_row(pair: Pair, now: datetime) -> dict[str, Any]:
    either, mine, derived = pair.either, pair.notifier, pair.derived
    return {
        "episode_id": either.episode_id,
        "county_code": either.county_code,
        "kind": either.kind,
        "policy_of_record": derived.policy_digest if derived else None,
        "obligation_id": mine.obligation_id if mine else None,
        "notifier_policy_digest": mine.policy_digest if mine else None,
        "notifier_due_at": _iso(mine.due_at) if mine else None,
        "notifier_notified_at": _iso(mine.satisfied_at) if mine else None,
        "notifier_outcome": mine.outcome(now) if mine else None,
        "derived_due_at": _iso(derived.due_at) if derived else None,
        "derived_notified_at": _iso(derived.satisfied_at) if derived else None,
        "derived_outcome": derived.outcome(now) if derived else None,
        "finding": pair.finding,
        "finding_reason": pair.reason,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


CSV_COLUMNS = (
    "episode_id",
    "county_code",
    "obligation_id",
    "kind",
    "jurisdiction",
    "policy_digest",
    "clock_start",
    "due_at",
    "notified_at",
    "seconds_to_notice",
    "allowed_seconds",
    "outcome",
    "notice_event_id",
    "waiting_reason",
)


CROSSCHECK_COLUMNS = (
    "episode_id",
    "county_code",
    "kind",
    "policy_of_record",
    "obligation_id",
    "notifier_policy_digest",
    "notifier_due_at",
    "notifier_notified_at",
    "notifier_outcome",
    "derived_due_at",
    "derived_notified_at",
    "derived_outcome",
    "finding",
    "finding_reason",
)

VIEWS = ("obligations", "crosscheck")


def csv_text(result: dict[str, Any], view: str = "obligations") -> str:
    """The report as CSV: the notifier's obligation rows, or (``crosscheck``) per
    episode and kind both views side by side. The same bytes online
    (``GET /v1/audit/compliance?format=csv``) and offline (``mfc audit compliance``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if view == "crosscheck":
        writer.writerow(CROSSCHECK_COLUMNS)
        for row in result["crosscheck"]["rows"]:
            writer.writerow([row[c] for c in CROSSCHECK_COLUMNS])
        return buffer.getvalue()
    writer.writerow(CSV_COLUMNS)
    for episode in result["episodes"]:
        for row in episode["obligations"]:
            writer.writerow([row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()
