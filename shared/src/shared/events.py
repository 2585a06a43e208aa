"""The event contract: the CloudEvents 1.0 envelope and the data of every event type.

Every message on every ``mfc.*`` topic is a CloudEvent in structured JSON mode. The
envelope's ``id`` is the dedupe key of every consumer (our broker gives at-least-once
delivery, never exactly-once), and ``subject`` is the episode id, which is also the
Kafka key. Schemas only grow: new optional fields, never a changed meaning; a breaking
change is a new ``type``.

Strict at the edge, tolerant inside. What a county system sends is refused if it
holds a field the contract does not have (a misspelled ``photo_ulr`` would otherwise
be dropped without a word, and the agency would believe it had told us); a county's
own data goes in the ``extensions`` object, which is kept. Our own consumers read
the canonical events tolerantly (``CloudEvent.data_as``), so a producer may add a
field before every consumer knows it.
"""

from __future__ import annotations

import builtins
import difflib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar, get_args
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

_M = TypeVar("_M", bound=BaseModel)

SPEC_VERSION: Literal["1.0"] = "1.0"
CONTENT_TYPE: Literal["application/json"] = "application/json"

# Bounded text, so no field can carry megabytes into every downstream table.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
]
CountyCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_upper=True, pattern=r"^[A-Z]{2}-\d{3}$"
    ),
]
"""State postal code + the county's 3-digit FIPS code, e.g. ``NC-063`` (Durham)."""


class EventType(StrEnum):
    EPISODE_REPORTED = "mfc.episode.reported"
    EPISODE_UPDATED = "mfc.episode.updated"
    NOTIFICATION_RECORDED = "mfc.notification.recorded"
    EPISODE_LOCATED = "mfc.episode.located"
    SCREENING_COMPLETED = "mfc.screening.completed"
    EPISODE_CLOSED = "mfc.episode.closed"
    FEED_HEARTBEAT = "mfc.feed.heartbeat"
    DEADLETTER_RECORDED = "mfc.deadletter.recorded"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 document in structured mode.

    Extension attributes (unknown top-level keys) are kept, as the CloudEvents spec
    asks of intermediaries.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = SPEC_VERSION
    id: Identifier
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    time: AwareDatetime
    subject: Annotated[str, StringConstraints(max_length=256)] | None = None
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        type: str,
        source: str,
        subject: str | None,
        data: BaseModel | dict[str, Any],
        time: datetime,
        id: str | None = None,
    ) -> CloudEvent:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        return cls(
            id=id or str(uuid4()),
            source=source,
            type=type,
            time=time.astimezone(UTC),
            subject=subject,
            data=payload,
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        """Parse a structured-mode CloudEvent.

        Raises:
            InvalidEventError: the bytes are not JSON or not a valid CloudEvent.
        """
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEventError(f"not a JSON document: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidEventError("a CloudEvent must be a JSON object")
        try:
            event = cls.model_validate(document)
        except ValidationError as exc:
            raise InvalidEventError(describe_validation_error(exc)) from exc
        if b"\\u0000" in raw and (where := nul_path(document)) is not None:
            place = ".".join(shown(p) for p in where)
            # A NUL only in its data: the event is known (id, subject), and its
            # dead letter says which it was.
            known = event if where[0] == "data" else None
            raise InvalidEventError(f"{place}: {NUL_PROBLEM}", event=known)
        return event

    def data_as(self, model: builtins.type[_M], *, strict: bool = False) -> _M:
        """Validate ``data`` against the model of this event's type. A consumer reads
        tolerantly: fields it does not know are left out. ``strict`` (intake, reading
        what a county system sent) refuses them instead.

        Raises:
            InvalidEventError: naming every bad field.
        """
        try:
            return model.model_validate(
                self.data, extra="forbid" if strict else "ignore"
            )
        except ValidationError as exc:
            raise InvalidEventError(
                describe_validation_error(exc, prefix="data", model=model)
            ) from exc


class InvalidEventError(ValueError):
    """A message that can never be processed: it belongs on the dead-letter topic.
    ``event``: the CloudEvent, when it could be read at all (its dead letter then
    names it)."""

    def __init__(self, message: str, *, event: CloudEvent | None = None) -> None:
        super().__init__(message)
        self.event = event


NUL_PROBLEM = "holds a NUL character (\\u0000), which cannot be stored: remove it"
"""PostgreSQL stores no NUL in text or JSON: such a value is refused at the door
(found by fuzzing: intake answered 500)."""


def nul_path(
    value: Any, path: tuple[str | int, ...] = ()
) -> tuple[str | int, ...] | None:
    """Where the first NUL character is in a parsed JSON value (a key or a
    string), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return (*path, shown(key))
            found = nul_path(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, (*path, index))
            if found is not None:
                return found
    return None


def describe_validation_error(
    exc: ValidationError,
    *,
    prefix: str = "",
    model: builtins.type[BaseModel] | None = None,
) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(shown(p) for p in (prefix, *error["loc"]) if p != "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = unknown_field_message(model, error["loc"])
        parts.append(f"{path or '<root>'}: {message}")
    return "; ".join(parts)


def shown(part: str | int) -> str:
    """A step of a field's path as a person can read it in a reason: a sender's
    unknown key may hold control characters (a NUL, which PostgreSQL will not store
    in JSON text) or run long, so it is escaped and cut."""
    text = str(part)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 64 else f"{text[:61]}..."


def unknown_field_message(
    model: builtins.type[BaseModel] | None, loc: Sequence[str | int]
) -> str:
    """What to tell a sender about a field the contract does not have, with the
    field it most likely meant (``photo_ulr`` -> ``photo_url``)."""
    known = _fields_at(model, loc[:-1]) if model is not None and loc else []
    if len(str(loc[-1])) > 64:
        known = []  # no field name is that long; and difflib's cost grows with it
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown field, refused so that it is not lost{hint} "
        "(a county's own data goes in 'extensions')"
    )


def _fields_at(model: builtins.type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The field names of the model found by following ``path`` from ``model``."""
    current: builtins.type[BaseModel] | None = model
    for step in path:
        if current is None:
            return []
        if isinstance(step, int):
            continue  # an index into a list: the same item model
        field = current.model_fields.get(step)
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> builtins.type[BaseModel] | None:
    """The pydantic model inside a field's type (``Child | None``, ``list[Child]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- #
# Inbound data (county systems -> intake), SPEC sections 3 and 4.1
# --------------------------------------------------------------------------- #


class _Data(BaseModel):
    # Strict at the edge: a field the contract does not have is refused, never
    # dropped (FastAPI validates request bodies with this). Consumers of canonical
    # events read tolerantly through ``CloudEvent.data_as``, which ignores them.
    model_config = ConfigDict(frozen=True, extra="forbid")


MAX_EXTENSIONS = 100
Extensions = Annotated[dict[str, JsonValue], Field(max_length=MAX_EXTENSIONS)]
"""A county system's own data that the contract has no field for: kept with the
episode and in its events and trail, read by no rule."""


Unknown = Literal["unknown"]
TriState = bool | Unknown
"""``true``, ``false`` or ``"unknown"``: the statute asks for the information
"where reasonably possible", so not knowing is a valid, recorded answer."""


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Circumstance(StrEnum):
    RUNAWAY = "runaway"
    FAMILY_ABDUCTION = "family_abduction"
    NON_FAMILY_ABDUCTION = "non_family_abduction"
    LOST_INJURED = "lost_injured"
    UNKNOWN = "unknown"


class PlacementType(StrEnum):
    FOSTER_HOME = "foster_home"
    KINSHIP = "kinship"
    CONGREGATE_CARE = "congregate_care"
    OTHER = "other"


class Recipient(StrEnum):
    LAW_ENFORCEMENT = "law_enforcement"
    NCMEC = "ncmec"
    SUPERVISOR = "supervisor"
    PARENT_GUARDIAN = "parent_guardian"
    COURT = "court"
    CHILD_ATTORNEY = "child_attorney"
    GUARDIAN_AD_LITEM = "guardian_ad_litem"
    TRIBE = "tribe"
    CASA = "casa"
    """The child's court-appointed special advocate (AZ)."""
    CAREGIVER = "caregiver"
    """The foster parent or out-of-home caregiver the child left (AZ)."""
    MISSING_CHILDREN_UNIT = "missing_children_unit"
    """The state agency's missing-children team or absconder unit (GA, TN)."""
    CHILD_AND_FAMILY_TEAM = "child_and_family_team"
    """A staffing with the child's Child and Family Team (UT)."""


class NotificationMethod(StrEnum):
    PHONE = "phone"
    WRITTEN = "written"
    ONLINE = "online"
    SYSTEM = "system"


class Staff(_Data):
    id: Identifier
    name: Name
    email: EmailStr
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None


class Child(_Data):
    first_name: Name
    last_name: Name
    date_of_birth: date
    sex: Sex
    race: ShortText | None = None
    height_cm: Annotated[float, Field(gt=0, le=250)] | None = None
    weight_kg: Annotated[float, Field(gt=0, le=400)] | None = None
    hair_color: ShortText | None = None
    eye_color: ShortText | None = None
    distinguishing_marks: LongText | None = None
    photo_url: (
        Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None
    ) = None
    indian_child: TriState = "unknown"
    """Whether the child is an Indian child (ICWA, 25 U.S.C. 1903(4)); tribe
    notices (e.g. California's) depend on it."""


class ChildUpdate(_Data):
    """Descriptive fields that an update may add or correct; identity stays fixed."""

    race: ShortText | None = None
    height_cm: Annotated[float, Field(gt=0, le=250)] | None = None
    weight_kg: Annotated[float, Field(gt=0, le=400)] | None = None
    hair_color: ShortText | None = None
    eye_color: ShortText | None = None
    distinguishing_marks: LongText | None = None
    photo_url: (
        Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None
    ) = None
    indian_child: TriState | None = None


class Endangerments(_Data):
    """42 U.S.C. 671(a)(35)(B)(iii): the endangerment information of the report."""

    pregnant: TriState = "unknown"
    prescription_medications: (
        Annotated[list[ShortText], Field(max_length=50)] | Unknown
    ) = "unknown"
    suicidal_tendencies: TriState = "unknown"
    sex_trafficking_vulnerability: TriState = "unknown"
    other_health_or_risk_factors: (
        Annotated[list[ShortText], Field(max_length=50)] | Unknown
    ) = "unknown"


class EndangermentsUpdate(_Data):
    pregnant: TriState | None = None
    prescription_medications: (
        Annotated[list[ShortText], Field(max_length=50)] | Unknown | None
    ) = None
    suicidal_tendencies: TriState | None = None
    sex_trafficking_vulnerability: TriState | None = None
    other_health_or_risk_factors: (
        Annotated[list[ShortText], Field(max_length=50)] | Unknown | None
    ) = None


class EpisodeReportedData(_Data):
    """``mfc.episode.reported``: a child in care is missing (SPEC 4.1)."""

    county_code: CountyCode
    case_id: Identifier
    child: Child
    last_seen_at: AwareDatetime
    discovered_at: AwareDatetime
    agency_learned_at: AwareDatetime
    determined_missing_at: AwareDatetime | None = None
    circumstance: Circumstance = Circumstance.UNKNOWN
    last_known_location: LongText | None = None
    placement_type: PlacementType
    prior_episodes: Annotated[int, Field(ge=0, le=1000)] = 0
    endangerments: Endangerments = Field(default_factory=Endangerments)
    caseworker: Staff
    supervisor: Staff
    extensions: Extensions | None = None
    """The county system's own data, kept as sent; no rule reads it."""

    @model_validator(mode="after")
    def _times_in_order(self) -> Self:
        # The clocks of the law start at agency_learned_at; a report whose times
        # contradict each other would start them at the wrong moment. Each error is
        # located at the later field, so a 422 names it.
        pairs = [
            ("discovered_at", "last_seen_at"),
            ("agency_learned_at", "discovered_at"),
            ("determined_missing_at", "last_seen_at"),
        ]
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "time_order",
                    "{later} must not be before {earlier}",
                    {"later": later, "earlier": earlier},
                ),
                loc=(later,),
                input=getattr(self, later).isoformat(),
            )
            for later, earlier in pairs
            if getattr(self, later) is not None
            and getattr(self, later) < getattr(self, earlier)
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


class EpisodeUpdatedData(_Data):
    """``mfc.episode.updated``: new information (photo, endangerment, sighting, contact)."""

    child: ChildUpdate | None = None
    endangerments: EndangermentsUpdate | None = None
    last_known_location: LongText | None = None
    note: LongText | None = None
    updated_by: Identifier | None = None
    extensions: Extensions | None = None
    """The county system's own data; merged over the report's, key by key."""


class NotificationFields(_Data):
    """What a notice says besides who gave it (the HTTP API can take that from the
    caller's sign-in)."""

    recipient: Recipient
    method: NotificationMethod
    notified_at: AwareDatetime
    reference_number: Identifier | None = None
    ncic_number: Identifier | None = None
    agency: ShortText | None = None
    items_not_available: Annotated[list[ShortText], Field(max_length=30)] = Field(
        default_factory=list
    )
    """Report items the agency could not reasonably obtain for this notice (the law
    asks for them "where reasonably possible"), named as a rule's ``report_items``
    name them (``child.photo_url``): a duty does not wait for these."""


class NotificationRecordedData(NotificationFields):
    """``mfc.notification.recorded``: a notice was given to someone."""

    notified_by: Identifier


class EpisodeLocatedData(_Data):
    located_at: AwareDatetime
    location_type: ShortText
    returned_to: ShortText | None = None


class ScreeningCompletedData(_Data):
    completed_at: AwareDatetime
    trafficking_indicated: bool
    screened_by: Identifier


class EpisodeClosedData(_Data):
    closed_at: AwareDatetime
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ]
    closed_by: Identifier


class FeedHeartbeatData(_Data):
    """A county system saying it is alive while it has nothing to report, so that a
    feed that has gone quiet is told from one with nothing to say."""

    county_code: CountyCode


INBOUND_DATA: dict[str, type[_Data]] = {
    EventType.EPISODE_REPORTED: EpisodeReportedData,
    EventType.EPISODE_UPDATED: EpisodeUpdatedData,
    EventType.NOTIFICATION_RECORDED: NotificationRecordedData,
    EventType.EPISODE_LOCATED: EpisodeLocatedData,
    EventType.SCREENING_COMPLETED: ScreeningCompletedData,
    EventType.EPISODE_CLOSED: EpisodeClosedData,
    EventType.FEED_HEARTBEAT: FeedHeartbeatData,
}
"""The data model of each inbound event type (county systems -> intake)."""


# --------------------------------------------------------------------------- #
# Canonical episode events (intake -> mfc.episodes.v1)
# --------------------------------------------------------------------------- #


class EpisodeContext(_Data):
    """Fields intake adds to every canonical event it republishes."""

    episode_id: UUID
    county_code: CountyCode


PolicyDigest = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the policy file's bytes, as obligations record it",
    ),
]


class EpisodeReported(EpisodeReportedData, EpisodeContext):
    completeness: list[str] = Field(default_factory=list)
    """Report items still missing (e.g. ``child.photo_url``), see intake's domain."""
    policy_digest: PolicyDigest | None = None
    """The sha256 of the policy file intake accepted the report under and answered
    its deadlines from: the policy of record the audit's cross-check derives the
    episode's duties by (None in events from before it was stamped)."""


class EpisodeUpdated(EpisodeUpdatedData, EpisodeContext):
    completeness: list[str] = Field(default_factory=list)


class NotificationRecorded(NotificationRecordedData, EpisodeContext):
    missing_items: list[str] = Field(default_factory=list)
    """Report items the episode lacked when the notice was recorded: intake's
    ``completeness`` then, and ``law_enforcement_report_number`` until a notice to
    law enforcement with a reference number has been recorded. A rule whose
    ``report_items`` are among them is not satisfied by this notice."""


class EpisodeLocated(EpisodeLocatedData, EpisodeContext):
    pass


class ScreeningCompleted(ScreeningCompletedData, EpisodeContext):
    pass


class EpisodeClosed(EpisodeClosedData, EpisodeContext):
    pass


CANONICAL_DATA: dict[str, type[EpisodeContext]] = {
    EventType.EPISODE_REPORTED: EpisodeReported,
    EventType.EPISODE_UPDATED: EpisodeUpdated,
    EventType.NOTIFICATION_RECORDED: NotificationRecorded,
    EventType.EPISODE_LOCATED: EpisodeLocated,
    EventType.SCREENING_COMPLETED: ScreeningCompleted,
    EventType.EPISODE_CLOSED: EpisodeClosed,
}
"""The data model of each canonical event type on ``mfc.episodes.v1``."""


# --------------------------------------------------------------------------- #
# Dead letters
# --------------------------------------------------------------------------- #


class DeadLetter(_Data):
    """``mfc.deadletter.recorded``: a message that could not be processed.

    The original bytes are kept (base64) so nothing is lost: an operator can fix
    the cause and replay the message.
    """

    reason: LongText
    error_type: ShortText
    consumer: ShortText
    attempts: int
    original_topic: str
    original_partition: int | None = None
    original_offset: int | None = None
    original_key: str | None = None
    original_event_id: str | None = None
    original_base64: str


def new_event_id() -> str:
    return str(uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)
