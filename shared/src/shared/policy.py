"""Jurisdiction policy: the federal baseline and state and county overlays in one TOML
file (every deadline, reminder, escalation chain, contact and on-call schedule).

Loaded and validated once at start-up; every error names the file, the place in it
(e.g. the jurisdiction and rule id) and the field. Overlays merge by rule ``id``: a
state rule with the id of a federal one replaces the fields it names; a new id adds a
rule; ``disabled = true`` removes one. Resolution for ``NC-063`` applies ``federal``,
then ``NC``, then ``NC-063``.

This module is the contract: the schema, the loader and plain lookups. Evaluating a
rule against an episode (conditions, deadlines, who is on call) is the ``rules``
package's job; what each service then does with it lives in its own domain code.
"""

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, time, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from shared.durations import Duration, format_duration, parse_duration
from shared.events import Circumstance, NotificationMethod, Recipient

FEDERAL = "federal"


@cache
def state_codes() -> frozenset[str]:
    """The two-letter codes a jurisdiction key may name: the states, DC and the
    territories, as the ``holidays`` package knows them (it also counts their
    business days)."""
    return frozenset(holidays.country_holidays("US").subdivisions)


def _known_state(key: str) -> str:
    if key != FEDERAL and key[:2] not in state_codes():
        raise ValueError(
            f"unknown state code {key[:2]!r}; use a US postal code such as 'GA' or 'DC'"
        )
    return key


RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
JurisdictionKey = Annotated[
    str,
    StringConstraints(pattern=r"^(federal|[A-Z]{2}|[A-Z]{2}-\d{3})$"),
    AfterValidator(_known_state),
]


class PolicyError(ValueError):
    """The policy file is invalid; the message names file, place and field."""


class _Strict(BaseModel):
    # A typo in a policy file must fail loudly, not silently mean "default".
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class BusinessDays:
    """A deadline counted in a jurisdiction's working days (``"2 business days"``):
    the day the clock starts does not count; the deadline is the end of the working
    day on the ``days``-th working day after it (weekends, the state's public
    holidays and the calendar's closure days are not working days)."""

    days: int

    def __str__(self) -> str:
        return f"{self.days} business day{'' if self.days == 1 else 's'}"


_BUSINESS_DAYS = re.compile(r"^\s*(\d+)\s+business\s+days?\s*$", re.IGNORECASE)


def _parse_due(value: object) -> timedelta | BusinessDays:
    if isinstance(value, timedelta | BusinessDays):
        return value
    if isinstance(value, str):
        match = _BUSINESS_DAYS.match(value)
        if match is None:
            if "business" in value.lower():
                raise ValueError(
                    f"invalid due {value!r}; write e.g. '2 business days' or '1 business day'"
                )
            return parse_duration(value)
        days = int(match.group(1))
        if not 1 <= days <= 60:
            raise ValueError(f"invalid due {value!r}: business days run from 1 to 60")
        return BusinessDays(days)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ValueError(
        "due must be a duration ('24h') or business days ('2 business days')"
    )


def format_due(due: timedelta | BusinessDays) -> str:
    """A due as the policy file writes it: ``24h`` or ``2 business days``."""
    return str(due) if isinstance(due, BusinessDays) else format_duration(due)


Due = Annotated[
    timedelta | BusinessDays,
    PlainValidator(_parse_due),
    PlainSerializer(format_due, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "examples": ["24h", "2 business days"]}),
]
"""A rule's time to act: a plain duration or a number of business days."""

CalendarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][\w.-]{0,63}$")]


def _known_holidays(name: str) -> str:
    country, _, subdivision = name.partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown holiday calendar {name!r}: the holidays package has no country "
            f"{country!r}; write e.g. 'US-GA'"
        )
    if subdivision and subdivision not in supported[country]:
        raise ValueError(
            f"unknown holiday calendar {name!r}: the holidays package has no "
            f"subdivision {subdivision!r} of {country}"
        )
    return name


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; write an IANA name such as 'America/New_York'"
        ) from exc
    return name


class Calendar(_Strict):
    """The working days business-day deadlines count: weekdays that are neither a
    public holiday of ``holidays`` (a country with an optional subdivision, e.g.
    ``US-GA``, as the ``holidays`` package names it) nor one of ``closures``."""

    holidays: Annotated[str, AfterValidator(_known_holidays)]
    time_zone: Annotated[str, AfterValidator(_known_zone)]
    closures: tuple[date, ...] = ()
    """Extra days the agency is closed (e.g. a closure the governor ordered)."""
    day_ends: time = time(17, 0)
    """When a working day ends, local time: a business-day deadline falls then."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class ClockStart(StrEnum):
    """Which moment starts a rule's clock (jurisdictions differ)."""

    AGENCY_LEARNED_AT = "agency_learned_at"
    DISCOVERED_AT = "discovered_at"
    LAST_SEEN_AT = "last_seen_at"
    DETERMINED_MISSING_AT = "determined_missing_at"
    LOCATED_AT = "located_at"
    SCREENING_COMPLETED_AT = "screening_completed_at"


class Trigger(StrEnum):
    REPORTED = "reported"
    LOCATED = "located"
    SCREENING = "screening"


class Contact(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: EmailStr | None = None


class Override(_Strict):
    start: AwareDatetime
    end: AwareDatetime
    contact: str

    @model_validator(mode="after")
    def _ordered(self) -> "Override":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Schedule(_Strict):
    """A rotation: ``members`` take turns of ``shift`` length from ``start``;
    ``overrides`` replace whoever is on call during their window."""

    members: Annotated[list[str], Field(min_length=1)]
    start: AwareDatetime
    shift: Duration = timedelta(days=7)
    overrides: list[Override] = Field(default_factory=list)


Target = Annotated[
    str,
    StringConstraints(
        pattern=r"^(caseworker|supervisor|contact:[\w.-]+|schedule:[\w.-]+)$"
    ),
]
"""Who a level alerts: the episode's ``caseworker`` or ``supervisor``, a named
``contact:<id>``, or whoever is on call in ``schedule:<name>`` when the step fires."""


OnCallTarget = Annotated[
    str, StringConstraints(pattern=r"^(contact:[\w.-]+|schedule:[\w.-]+)$")
]
"""Who is paged about a county's systems (no episode: no caseworker): a named
``contact:<id>`` or whoever is on call in ``schedule:<name>``."""


class Level(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    notify: Annotated[list[Target], Field(min_length=1)]
    timeout: Duration | None = None
    """How long this level has to act before the next is alerted."""


class Chain(_Strict):
    levels: Annotated[list[Level], Field(min_length=1)]

    @model_validator(mode="after")
    def _timeouts(self) -> "Chain":
        for level in self.levels[:-1]:
            if level.timeout is None:
                raise ValueError(
                    f"level {level.name!r} needs a timeout (it is not the last)"
                )
        return self


class Condition(_Strict):
    """Facts of the episode a rule depends on; all given ones must hold."""

    age_under: Annotated[int, Field(gt=0, le=25)] | None = None
    age_at_least: Annotated[int, Field(ge=0, le=25)] | None = None
    endangered: bool | None = None
    """Any endangerment answered ``true``, or a non-empty list of them."""
    circumstance_in: list[Circumstance] | None = None
    trafficking_indicated: bool | None = None
    indian_child: bool | None = None
    """``true``: only when the child is known to be an Indian child (not unknown)."""
    any_of: list["Condition"] | None = None


class SatisfiedBy(_Strict):
    recipient: Recipient
    methods: list[NotificationMethod] | None = None
    """Only these methods count (e.g. NC's written report); any when absent."""
    not_before: ClockStart = ClockStart.LAST_SEEN_AT
    """A notice given before this moment belongs to an earlier duty."""
    requires_reference: bool = False
    """Without the reference number (LE report / NCMEC case number) the obligation
    stays open and says why."""


class ObligationRule(_Strict):
    id: RuleId
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    opens_on: Trigger
    when: Condition | None = None
    clock: ClockStart
    due: Due
    calendar: CalendarName | None = None
    """For a business-day ``due``: the calendar it counts in; the jurisdiction's
    ``calendar`` (county, else state, else federal) when absent."""
    satisfied_by: SatisfiedBy
    report_items: list[str] = Field(default_factory=list)
    """Items that must accompany the notice, e.g. ``child.photo_url``."""
    reminders: list[Duration] | None = None
    """After opening; the file's defaults when absent."""
    chain: str = "default"
    source: Annotated[str, StringConstraints(min_length=5)]
    """The law or policy this rule comes from."""
    disabled: bool = False


class PromptStart(StrEnum):
    """What starts a prompt series."""

    REPORTED = "reported"
    """While missing: from the report until the child is located."""
    LOCATED = "located"
    """After return: from located until the episode closes."""
    NEW_INFORMATION = "new_information"
    """Each ``updated`` event: a one-off to pass the information on."""
    INCOMPLETE = "incomplete"
    """While the report still misses items (photo, description, endangerments)."""


class PromptRule(_Strict):
    id: RuleId
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    starts_on: PromptStart
    every: Duration | None = None
    """Recurring: a new occurrence this often; one-off when absent."""
    first_after: Duration = timedelta()
    """Delay of the first occurrence after the start."""
    stop_after: Duration | None = None
    """Recurring: no new occurrence this long after the start (FL: 30 days)."""
    due: Duration
    """Time to complete an occurrence before it is overdue and escalates."""
    assignee: Literal["caseworker", "supervisor"] = "caseworker"
    escalate_to: Target = "supervisor"
    completed_by_event: Literal["mfc.screening.completed"] | None = None
    """An episode event that completes the open occurrence by itself."""
    source: Annotated[str, StringConstraints(min_length=5)]
    disabled: bool = False


class Defaults(_Strict):
    reminders: list[Duration] = Field(default_factory=list)
    snooze: Duration = timedelta(hours=1)
    breach_repeat: Duration = timedelta(hours=1)


class Jurisdiction(_Strict):
    name: str | None = None
    calendar: CalendarName | None = None
    """The calendar its business-day rules count in (``calendars.<name>``)."""
    on_call: list[OnCallTarget] | None = None
    """Who is paged when a county's feed falls silent; the most specific
    jurisdiction that names anyone decides."""
    obligations: list[dict[str, Any]] = Field(default_factory=list)
    """Rules or partial overrides (merged by ``id`` over the parent's)."""
    prompts: list[dict[str, Any]] = Field(default_factory=list)
    """Prompt rules or partial overrides (merged by ``id`` over the parent's)."""


class PolicyDocument(_Strict):
    version: Annotated[str, StringConstraints(min_length=1)]
    defaults: Defaults = Field(default_factory=Defaults)
    contacts: dict[str, Contact] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    chains: dict[str, Chain]
    calendars: dict[CalendarName, Calendar] = Field(default_factory=dict)
    jurisdictions: dict[JurisdictionKey, Jurisdiction]


class Policy:
    """A validated policy file, resolvable per county."""

    def __init__(
        self,
        document: PolicyDocument,
        *,
        digest: str,
        origin: str,
        content: bytes = b"",
    ) -> None:
        self.document = document
        self.digest = digest
        """sha256 of the file's bytes: the version recorded on everything it opens."""
        self.origin = origin
        self.content = content
        """The file's bytes, as loaded (the audit trail keeps them by digest)."""
        self._resolved: dict[str, list[ObligationRule]] = {}
        self._prompts: dict[str, list[PromptRule]] = {}

    def chain(self, name: str) -> Chain:
        return self.document.chains[name]

    def obligations_for(self, county_code: str) -> list[ObligationRule]:
        """The rules in force for a county: federal, then state, then county."""
        if county_code not in self._resolved:
            self._resolved[county_code] = _resolve(
                self.document,
                county_code,
                self.origin,
                section="obligations",
                model=ObligationRule,
            )
        return self._resolved[county_code]

    def prompts_for(self, county_code: str) -> list[PromptRule]:
        """The prompt rules in force for a county: federal, then state, then county."""
        if county_code not in self._prompts:
            self._prompts[county_code] = _resolve(
                self.document,
                county_code,
                self.origin,
                section="prompts",
                model=PromptRule,
            )
        return self._prompts[county_code]

    def on_call_for(self, county_code: str) -> list[str]:
        """Who is paged about the county's systems: the county's overlay, else its
        state's, else the federal baseline's ``on_call``; none named: nobody."""
        for key in (county_code, county_code[:2], FEDERAL):
            jurisdiction = self.document.jurisdictions.get(key)
            if jurisdiction is not None and jurisdiction.on_call:
                return list(jurisdiction.on_call)
        return []

    def jurisdiction_of(self, county_code: str) -> str:
        """The most specific jurisdiction with an overlay for this county."""
        for key in (county_code, county_code[:2]):
            if key in self.document.jurisdictions:
                return key
        return FEDERAL


_Rule = TypeVar("_Rule", ObligationRule, PromptRule)


def _resolve(
    document: PolicyDocument,
    county_code: str,
    origin: str,
    *,
    section: Literal["obligations", "prompts"],
    model: type[_Rule],
) -> list[_Rule]:
    merged: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    last_touched: dict[str, str] = {}
    calendar: str | None = None
    for key in (FEDERAL, county_code[:2], county_code):
        jurisdiction = document.jurisdictions.get(key)
        if jurisdiction is None:
            continue
        calendar = jurisdiction.calendar or calendar
        for raw in getattr(jurisdiction, section):
            rule_id = raw["id"]
            last_touched[rule_id] = key
            if rule_id in merged:
                merged[rule_id] = _deep_merge(merged[rule_id], raw)
            else:
                merged[rule_id] = dict(raw)
                order.append(rule_id)
    rules = []
    for rule_id in order:
        place = f"jurisdictions.{last_touched[rule_id]}, rule {rule_id}"
        try:
            rule = model.model_validate(merged[rule_id])
        except ValidationError as exc:
            raise PolicyError(_describe(origin, place, exc)) from exc
        if rule.disabled:
            continue
        if isinstance(rule, ObligationRule):
            rule = _with_calendar(rule, calendar, document, f"{origin}: {place}")
        rules.append(rule)
    return rules


def _with_calendar(
    rule: _Rule, inherited: str | None, document: "PolicyDocument", place: str
) -> _Rule:
    """A business-day rule names the calendar it counts in: its own, else its
    jurisdiction's (county, state, federal); having none is an error. A calendar a
    rule names must exist, whatever its due."""
    if not isinstance(rule, ObligationRule):
        return rule
    if rule.calendar is not None and rule.calendar not in document.calendars:
        raise PolicyError(f"{place}: calendar: unknown calendar {rule.calendar!r}")
    if not isinstance(rule.due, BusinessDays):
        return rule
    name = rule.calendar or inherited
    if name is None:
        raise PolicyError(
            f"{place}: due: {rule.due} needs a calendar to count working days in; "
            'name one with calendar = "..." on the rule or its jurisdiction'
        )
    if name not in document.calendars:
        raise PolicyError(f"{place}: calendar: unknown calendar {name!r}")
    return rule.model_copy(update={"calendar": name})


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _describe(origin: str, place: str, exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or '<root>'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return f"{origin}: {place}: " + "; ".join(problems)


def _check_references(document: PolicyDocument, origin: str) -> None:
    """Every chain, contact and schedule a rule names exists, and every overlay
    resolves to valid rules for a county of its state."""
    named = [
        (f"chains.{name}", target)
        for name, chain in document.chains.items()
        for level in chain.levels
        for target in level.notify
    ] + [
        (f"jurisdictions.{key}.on_call", target)
        for key, jurisdiction in document.jurisdictions.items()
        for target in jurisdiction.on_call or []
    ]
    for place, target in named:
        kind, _, ref = target.partition(":")
        if kind == "contact" and ref not in document.contacts:
            raise PolicyError(f"{origin}: {place}: unknown contact {ref!r}")
        if kind == "schedule" and ref not in document.schedules:
            raise PolicyError(f"{origin}: {place}: unknown schedule {ref!r}")
    for name, schedule in document.schedules.items():
        for member in [*schedule.members, *(o.contact for o in schedule.overrides)]:
            if member not in document.contacts:
                raise PolicyError(
                    f"{origin}: schedules.{name}: unknown contact {member!r}"
                )
    if FEDERAL not in document.jurisdictions:
        raise PolicyError(f"{origin}: jurisdictions: the federal baseline is missing")
    for key, jurisdiction in document.jurisdictions.items():
        if jurisdiction.calendar and jurisdiction.calendar not in document.calendars:
            raise PolicyError(
                f"{origin}: jurisdictions.{key}.calendar: unknown calendar "
                f"{jurisdiction.calendar!r}"
            )
        for section in ("obligations", "prompts"):
            seen: set[str] = set()
            for index, raw in enumerate(getattr(jurisdiction, section)):
                rule_id = raw.get("id")
                if not isinstance(rule_id, str):
                    raise PolicyError(
                        f"{origin}: jurisdictions.{key}.{section}[{index}]: id: Field required"
                    )
                if rule_id in seen:
                    raise PolicyError(
                        f"{origin}: jurisdictions.{key}, rule {rule_id}: id: used twice "
                        f"in this jurisdiction's {section}; merge the two into one rule"
                    )
                seen.add(rule_id)
        sample = key if len(key) == 6 else f"{key}-000" if key != FEDERAL else "US-000"
        _resolve(document, sample, origin, section="prompts", model=PromptRule)
        for rule in _resolve(
            document, sample, origin, section="obligations", model=ObligationRule
        ):
            if rule.chain not in document.chains:
                raise PolicyError(
                    f"{origin}: jurisdictions.{key}, rule {rule.id}: chain: "
                    f"unknown chain {rule.chain!r}"
                )


def parse_policy(raw: bytes, *, origin: str = "<policy>") -> Policy:
    """Validate a policy document.

    Raises:
        PolicyError: naming the file, the place and the field at fault.
    """
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_describe(origin, "policy", exc)) from exc
    _check_references(document, origin)
    return Policy(
        document, digest=hashlib.sha256(raw).hexdigest(), origin=origin, content=raw
    )


def load_policy(path: Path) -> Policy:
    return parse_policy(path.read_bytes(), origin=str(path))


def default_policy_path() -> Path:
    """The policy shipped with the project: the federal baseline and fifteen state
    overlays (docs/policy-coverage.md lists them)."""
    return Path(__file__).parent / "policies" / "default.toml"


def rule_snapshot(rule: ObligationRule) -> dict[str, Any]:
    """The rule as JSON, stored with each obligation it opens (what applied, frozen)."""
    snapshot: dict[str, Any] = json.loads(rule.model_dump_json())
    return snapshot
