"""Episode rules that need no I/O: report checks against the clock, completeness,
and the identity of a report for dedupe."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar, get_args
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from shared.events import (
    CountyCode,
    EpisodeReportedData,
    NotificationRecordedData,
    Recipient,
)

_T = TypeVar("_T")


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
    problems = rule_problems(
        EpisodeReportedData,
        report.model_dump(),
        now=now,
        skew=skew,
        served_counties=served_counties,
    )
    if problems:
        raise ReportRejectedError(problems)


_TIME = TypeAdapter(AwareDatetime)
_DATE = TypeAdapter(date)
_COUNTY = TypeAdapter(CountyCode)


def _parsed(adapter: TypeAdapter[_T], value: Any) -> _T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None  # the schema pass names this field


def rule_problems(
    model: type[BaseModel],
    raw: Any,
    *,
    now: datetime,
    skew: timedelta,
    served_counties: frozenset[str],
) -> list[FieldProblem]:
    """The deployment's rules over an event body, even one the schema refused.

    Each rule looks only at fields that parse on their own, so a 422 can list the
    schema's complaints and these together: every time of an event is in the past
    (``skew`` allowed), a report's county is served here and its child born.
    """
    if not isinstance(raw, Mapping):
        return []
    problems = []
    latest = now + skew
    for name, field in model.model_fields.items():
        if AwareDatetime in (field.annotation, *get_args(field.annotation)):
            value = _parsed(_TIME, raw.get(name))
            if value is not None and value > latest:
                problems.append(FieldProblem((name,), "must not be in the future"))
    if model is not EpisodeReportedData:
        return problems
    county = _parsed(_COUNTY, raw.get("county_code"))
    if county is not None and county not in served_counties:
        problems.insert(
            0,
            FieldProblem(
                ("county_code",),
                f"county {county} is not served by this deployment",
            ),
        )
    child = raw.get("child")
    born = (
        _parsed(_DATE, child.get("date_of_birth"))
        if isinstance(child, Mapping)
        else None
    )
    if born is not None and born > now.date():
        problems.append(
            FieldProblem(("child", "date_of_birth"), "must not be in the future")
        )
    return problems


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


LAW_ENFORCEMENT_REPORT_NUMBER = "law_enforcement_report_number"
"""A report item some states require with the NCMEC report (North Carolina)."""


def missing_items(
    missing: list[str],
    notice: NotificationRecordedData,
    *,
    law_enforcement_reference_recorded: bool,
) -> list[str]:
    """The report items an episode lacks as ``notice`` is recorded: its
    ``completeness``, and the law-enforcement report number until a notice to law
    enforcement with a reference number has been recorded (this one included)."""
    gives_it = (
        notice.recipient is Recipient.LAW_ENFORCEMENT
        and notice.reference_number is not None
    )
    if law_enforcement_reference_recorded or gives_it:
        return list(missing)
    return [*missing, LAW_ENFORCEMENT_REPORT_NUMBER]


def digest(value: Any) -> str:
    """A stable fingerprint of a JSON-able value (key order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _fingerprinted(data: BaseModel) -> dict[str, Any]:
    """What a digest covers: the data, without an absent ``extensions`` or an empty
    ``items_not_available`` (both added later), so that a report or fact sent before
    them has the digest it had."""
    dump = data.model_dump(mode="json")
    if dump.get("extensions", ...) is None:
        del dump["extensions"]
    if dump.get("items_not_available", ...) == []:
        del dump["items_not_available"]
    return dump


def report_digest(report: EpisodeReportedData) -> str:
    """A stable fingerprint of a report: the same report sent twice has one digest."""
    return digest(_fingerprinted(report))


def fact_digest(event_type: str, data: BaseModel) -> str:
    """The fingerprint of a later event: the same fact sent twice is recorded once."""
    return digest({"type": event_type, "data": _fingerprinted(data)})


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
