"""Episode rules that need no I/O: report checks against the clock, completeness,
and the identity of a report for dedupe."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.events import EpisodeReportedData


class EpisodeStatus(StrEnum):
    MISSING = "missing"
    LOCATED = "located"
    CLOSED = "closed"


@dataclass(frozen=True)
class FieldProblem:
    """A field at fault, in the shape FastAPI uses for 422 answers."""

    loc: tuple[str, ...]
    msg: str


class ReportRejectedError(Exception):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p.loc)}: {p.msg}" for p in problems))
        self.problems = problems


def check_report(
    report: EpisodeReportedData,
    *,
    now: datetime,
    skew: timedelta,
    served_counties: frozenset[str],
) -> None:
    """Refuse what the model alone cannot judge: the clock and the configuration.

    Raises:
        ReportRejectedError: naming every field at fault.
    """
    problems = []
    if report.county_code not in served_counties:
        problems.append(
            FieldProblem(
                ("county_code",),
                f"county {report.county_code} is not served by this deployment",
            )
        )
    latest = now + skew
    for name in (
        "last_seen_at",
        "discovered_at",
        "agency_learned_at",
        "determined_missing_at",
    ):
        value = getattr(report, name)
        if value is not None and value > latest:
            problems.append(FieldProblem((name,), "must not be in the future"))
    if report.child.date_of_birth > now.date():
        problems.append(
            FieldProblem(("child", "date_of_birth"), "must not be in the future")
        )
    if problems:
        raise ReportRejectedError(problems)


# The report items 42 U.S.C. 671(a)(35)(B) asks for "where reasonably possible".
_DESCRIPTION_FIELDS = (
    "photo_url",
    "race",
    "height_cm",
    "weight_kg",
    "hair_color",
    "eye_color",
)
_ENDANGERMENT_FIELDS = (
    "pregnant",
    "prescription_medications",
    "suicidal_tendencies",
    "sex_trafficking_vulnerability",
    "other_health_or_risk_factors",
)


def completeness(report: EpisodeReportedData) -> list[str]:
    """Report items still missing, as dotted paths (``child.photo_url``)."""
    missing = [
        f"child.{name}"
        for name in _DESCRIPTION_FIELDS
        if getattr(report.child, name) is None
    ]
    missing += [
        f"endangerments.{name}"
        for name in _ENDANGERMENT_FIELDS
        if getattr(report.endangerments, name) == "unknown"
    ]
    return missing


def digest(value: Any) -> str:
    """A stable fingerprint of a JSON-able value (key order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def report_digest(report: EpisodeReportedData) -> str:
    """A stable fingerprint of a report: the same report sent twice has one digest."""
    return digest(report.model_dump(mode="json"))


def fact_digest(event_type: str, data: BaseModel) -> str:
    """The fingerprint of a later event: the same fact sent twice is recorded once."""
    return digest({"type": event_type, "data": data.model_dump(mode="json")})


@dataclass(frozen=True)
class Episode:
    id: UUID
    county_code: str
    case_id: str
    status: EpisodeStatus
    completeness: list[str]
    agency_learned_at: datetime
    created_at: datetime
    updated_at: datetime
    located_at: datetime | None = None
    screened_at: datetime | None = None
    closed_at: datetime | None = None
