"""Jurisdiction policy: the federal baseline and state and county overlays in one TOML
file (every deadline, reminder, escalation chain, contact and on-call schedule).

Loaded and validated once at start-up; every error names the file, the place in it
(e.g. the jurisdiction and rule id) and the field. Overlays merge by rule ``id``: a
state rule with the id of a federal one replaces the fields it names; a new id adds a
rule; ``disabled = true`` removes one. Resolution for ``NC-063`` applies ``federal``,
then ``NC``, then ``NC-063``.

The notifier and followup services both read this file; what each does with a rule
(deadlines, prompts) lives in their own domain code.
"""

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared.durations import Duration
from shared.events import (
    Circumstance,
    Endangerments,
    EndangermentsUpdate,
    EpisodeReportedData,
    NotificationMethod,
    Recipient,
)

FEDERAL = "federal"

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
JurisdictionKey = Annotated[
    str, StringConstraints(pattern=r"^(federal|[A-Z]{2}|[A-Z]{2}-\d{3})$")
]


class PolicyError(ValueError):
    """The policy file is invalid; the message names file, place and field."""


class _Strict(BaseModel):
    # A typo in a policy file must fail loudly, not silently mean "default".
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    def on_call(self, at: datetime) -> str:
        for override in self.overrides:
            if override.start <= at < override.end:
                return override.contact
        turns = int((at - self.start) / self.shift)
        return self.members[turns % len(self.members)]


Target = Annotated[
    str,
    StringConstraints(
        pattern=r"^(caseworker|supervisor|contact:[\w.-]+|schedule:[\w.-]+)$"
    ),
]
"""Who a level alerts: the episode's ``caseworker`` or ``supervisor``, a named
``contact:<id>``, or whoever is on call in ``schedule:<name>`` when the step fires."""


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

    def holds(self, facts: "EpisodeFacts") -> bool:
        if self.age_under is not None and facts.age_years >= self.age_under:
            return False
        if self.age_at_least is not None and facts.age_years < self.age_at_least:
            return False
        if self.endangered is not None and facts.endangered != self.endangered:
            return False
        if (
            self.circumstance_in is not None
            and facts.circumstance not in self.circumstance_in
        ):
            return False
        if (
            self.trafficking_indicated is not None
            and facts.trafficking_indicated != self.trafficking_indicated
        ):
            return False
        if self.indian_child is not None and facts.indian_child != self.indian_child:
            return False
        return self.any_of is None or any(c.holds(facts) for c in self.any_of)


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
    due: Duration
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
    jurisdictions: dict[JurisdictionKey, Jurisdiction]


class EpisodeFacts(BaseModel):
    """What rules may depend on, derived from the report (and later events)."""

    model_config = ConfigDict(frozen=True)

    age_years: int
    endangered: bool
    circumstance: Circumstance
    trafficking_indicated: bool | None = None
    indian_child: bool | None = None

    @classmethod
    def of(
        cls, report: EpisodeReportedData, *, trafficking_indicated: bool | None = None
    ) -> "EpisodeFacts":
        return cls(
            age_years=_age(report.child.date_of_birth, report.agency_learned_at.date()),
            endangered=_endangered(report),
            circumstance=report.circumstance,
            trafficking_indicated=trafficking_indicated,
            indian_child=known(report.child.indian_child),
        )


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _endangered(report: EpisodeReportedData) -> bool:
    return is_endangered(endangerment_flags(report.endangerments))


def known(answer: bool | str | None) -> bool | None:
    """A yes/no/unknown answer as True, False or None (unknown)."""
    return answer if isinstance(answer, bool) else None


EndangermentFlags = dict[str, bool | None]
"""Per endangerment: present (True), absent (False) or unknown (None); no details."""


def endangerment_flags(
    endangerments: Endangerments | EndangermentsUpdate,
) -> EndangermentFlags:
    """Which endangerments are present, absent or unknown; an update gives only the
    ones it sets. A list counts as present when it names anything."""
    flags: EndangermentFlags = {}
    for name in Endangerments.model_fields:
        value = getattr(endangerments, name)
        if value is None:  # not part of this update
            continue
        flags[name] = len(value) > 0 if isinstance(value, list) else known(value)
    return flags


def is_endangered(flags: EndangermentFlags) -> bool:
    """Any endangerment answered ``true``, or a non-empty list of them."""
    return any(flag is True for flag in flags.values())


@dataclass(frozen=True)
class ObligationDraft:
    rule: ObligationRule
    clock_start: datetime
    due_at: datetime


def obligations_to_open(
    rules: list[ObligationRule],
    trigger: Trigger,
    facts: EpisodeFacts,
    times: Mapping[ClockStart, datetime | None],
    *,
    learned_at: datetime | None = None,
) -> list[ObligationDraft]:
    """The obligations ``trigger`` opens for an episode with these facts and times.

    A rule whose clock has no time yet (``determined_missing_at`` not given) starts at
    ``agency_learned_at``, the federal clock, so no duty is left without a deadline.
    ``learned_at`` is when the agency learned the facts that make a rule apply, if
    later than the report (an update adding an endangerment): the clock of a rule
    cannot start before the agency could know the rule applies.
    """
    drafts = []
    for rule in rules:
        if rule.opens_on is not trigger:
            continue
        if rule.when is not None and not rule.when.holds(facts):
            continue
        start = times.get(rule.clock) or times.get(ClockStart.AGENCY_LEARNED_AT)
        if start is None:
            raise ValueError(f"rule {rule.id}: no time for clock {rule.clock}")
        if learned_at is not None and learned_at > start:
            start = learned_at
        drafts.append(ObligationDraft(rule, start, start + rule.due))
    return drafts


def report_clock_times(
    report: EpisodeReportedData,
) -> dict[ClockStart, datetime | None]:
    """The clock starts a report gives (``determined_missing_at`` may be missing)."""
    return {
        ClockStart.AGENCY_LEARNED_AT: report.agency_learned_at,
        ClockStart.DISCOVERED_AT: report.discovered_at,
        ClockStart.LAST_SEEN_AT: report.last_seen_at,
        ClockStart.DETERMINED_MISSING_AT: report.determined_missing_at,
    }


class Policy:
    """A validated policy file, resolvable per county."""

    def __init__(self, document: PolicyDocument, *, digest: str, origin: str) -> None:
        self.document = document
        self.digest = digest
        """sha256 of the file's bytes: the version recorded on everything it opens."""
        self.origin = origin
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

    def resolve(
        self, targets: list[str], staff: dict[str, dict[str, Any]], at: datetime
    ) -> list[dict[str, Any]]:
        """The people ``targets`` name at a moment: ``caseworker`` and ``supervisor``
        from the episode's ``staff``, contacts by id, whoever a schedule has on call."""
        people = []
        for target in targets:
            kind, _, ref = target.partition(":")
            if kind in ("caseworker", "supervisor"):
                person = staff[kind]
                people.append(
                    {
                        "id": person["id"],
                        "name": person["name"],
                        "email": person.get("email"),
                    }
                )
                continue
            contact_id = (
                self.document.schedules[ref].on_call(at) if kind == "schedule" else ref
            )
            contact = self.document.contacts[contact_id]
            people.append(
                {"id": contact_id, "name": contact.name, "email": contact.email}
            )
        return people

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
    for key in (FEDERAL, county_code[:2], county_code):
        jurisdiction = document.jurisdictions.get(key)
        if jurisdiction is None:
            continue
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
        try:
            rule = model.model_validate(merged[rule_id])
        except ValidationError as exc:
            raise PolicyError(
                _describe(
                    origin,
                    f"jurisdictions.{last_touched[rule_id]}, rule {rule_id}",
                    exc,
                )
            ) from exc
        if not rule.disabled:
            rules.append(rule)
    return rules


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
    for name, chain in document.chains.items():
        for level in chain.levels:
            for target in level.notify:
                kind, _, ref = target.partition(":")
                if kind == "contact" and ref not in document.contacts:
                    raise PolicyError(
                        f"{origin}: chains.{name}: unknown contact {ref!r}"
                    )
                if kind == "schedule" and ref not in document.schedules:
                    raise PolicyError(
                        f"{origin}: chains.{name}: unknown schedule {ref!r}"
                    )
    for name, schedule in document.schedules.items():
        for member in [*schedule.members, *(o.contact for o in schedule.overrides)]:
            if member not in document.contacts:
                raise PolicyError(
                    f"{origin}: schedules.{name}: unknown contact {member!r}"
                )
    if FEDERAL not in document.jurisdictions:
        raise PolicyError(f"{origin}: jurisdictions: the federal baseline is missing")
    for key, jurisdiction in document.jurisdictions.items():
        for section in ("obligations", "prompts"):
            for index, raw in enumerate(getattr(jurisdiction, section)):
                if not isinstance(raw.get("id"), str):
                    raise PolicyError(
                        f"{origin}: jurisdictions.{key}.{section}[{index}]: id: Field required"
                    )
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
    return Policy(document, digest=hashlib.sha256(raw).hexdigest(), origin=origin)


def load_policy(path: Path) -> Policy:
    return parse_policy(path.read_bytes(), origin=str(path))


def default_policy_path() -> Path:
    """The policy shipped with the project (federal baseline + NC, CA, TX, MO, FL, KY)."""
    return Path(__file__).parent / "policies" / "default.toml"


def rule_snapshot(rule: ObligationRule) -> dict[str, Any]:
    """The rule as JSON, stored with each obligation it opens (what applied, frozen)."""
    snapshot: dict[str, Any] = json.loads(rule.model_dump_json())
    return snapshot
