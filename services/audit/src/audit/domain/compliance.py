"""The compliance report, derived from the trail alone. Pure.

Every number comes from the notifier's ``mfc.obligation.*`` events in the log, so an
auditor holding an export can recompute it: ``opened`` says what was required, by
when, and from which clock start; ``satisfied`` when the notice was given; ``moot``
that the episode closed first. An obligation is

* **met**: the notice was given at or before its due time;
* **late**: the notice was given after it;
* **missing**: no notice, and the due time has passed (also when the episode was
  closed after the breach);
* **pending**: no notice yet, not yet due (not counted in the on-time share);
* **moot**: the episode closed before the due time (not counted either).
"""

import csv
import io
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.published import ObligationEvent

OPENED, SATISFIED, MOOT = (
    ObligationEvent.OPENED.value,
    ObligationEvent.SATISFIED.value,
    ObligationEvent.MOOT.value,
)
TYPES = (OPENED, SATISFIED, MOOT)

OUTCOMES = ("met", "late", "missing", "pending", "moot")


@dataclass
class ObligationRecord:
    obligation_id: str
    episode_id: str
    county_code: str
    kind: str
    jurisdiction: str | None
    clock_start: datetime
    due_at: datetime
    policy_digest: str | None
    satisfied_at: datetime | None = None
    notice_event_id: str | None = None
    closed_at: datetime | None = None
    breached_before_close: bool = False

    def outcome(self, now: datetime) -> str:
        if self.satisfied_at is not None:
            return "met" if self.satisfied_at <= self.due_at else "late"
        if self.closed_at is not None and not self.breached_before_close:
            return "moot"
        return "missing" if now > self.due_at else "pending"

    def row(self, now: datetime) -> dict[str, Any]:
        elapsed = (
            (self.satisfied_at - self.clock_start).total_seconds()
            if self.satisfied_at is not None
            else None
        )
        return {
            "episode_id": self.episode_id,
            "county_code": self.county_code,
            "obligation_id": self.obligation_id,
            "kind": self.kind,
            "jurisdiction": self.jurisdiction,
            "policy_digest": self.policy_digest,
            "clock_start": self.clock_start.isoformat(),
            "due_at": self.due_at.isoformat(),
            "notified_at": self.satisfied_at.isoformat() if self.satisfied_at else None,
            "seconds_to_notice": elapsed,
            "allowed_seconds": (self.due_at - self.clock_start).total_seconds(),
            "outcome": self.outcome(now),
            "notice_event_id": self.notice_event_id,
        }


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
        elif event["type"] == MOOT:
            record.closed_at = datetime.fromisoformat(event["time"])
            record.breached_before_close = bool(data.get("was_breached"))
    return list(records.values())


def _summary(outcomes: list[str]) -> dict[str, Any]:
    counts = {name: outcomes.count(name) for name in OUTCOMES}
    decided = counts["met"] + counts["late"] + counts["missing"]
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
) -> dict[str, Any]:
    """Per obligation, per episode, per (kind, county) and in total.

    ``counties`` (None: all), ``clock_from`` and ``clock_to`` select obligations by
    county and by the time their clock started (``[from, to)``).
    """
    chosen = sorted(
        (
            r
            for r in records
            if (counties is None or r.county_code in counties)
            and (clock_from is None or r.clock_start >= clock_from)
            and (clock_to is None or r.clock_start < clock_to)
        ),
        key=lambda r: (r.clock_start, r.episode_id, r.kind),
    )
    rows = [r.row(now) for r in chosen]
    by_episode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        by_episode[row["episode_id"]].append(row)
        by_group[(row["kind"], row["county_code"])].append(row["outcome"])
    return {
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
)


def csv_text(result: dict[str, Any]) -> str:
    """The report's obligation rows as CSV: the same bytes online
    (``GET /v1/audit/compliance?format=csv``) and offline (``mfc audit compliance``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for episode in result["episodes"]:
        for row in episode["obligations"]:
            writer.writerow([row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()
