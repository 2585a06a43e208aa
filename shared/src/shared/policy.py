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
import tomllib
from datetime import timedelta
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
from shared.events import Circumstance, NotificationMethod, Recipient

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
    jurisdictions: dict[JurisdictionKey, Jurisdiction]


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
