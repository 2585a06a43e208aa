"""The events the notifier, followup and audit services publish (and intake's feed
health), as pydantic models.

They are the contract of ``mfc.obligations.v1``, ``mfc.alerts.v1``,
``mfc.prompts.v1``, ``mfc.audit.checkpoints.v1``, ``mfc.feeds.v1`` and
``mfc.schedules.v1``: the AsyncAPI document is built
from them, and every producer checks its data against them before the outbox takes
it (``checked``), so the document cannot drift from what is really sent. The models
forbid unknown fields for that reason; a consumer reading these events should be
tolerant and ignore fields it does not know.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared import topics
from shared.events import (
    CloudEvent,
    Identifier,
    PolicyDigest,
    describe_validation_error,
)


class ObligationEvent(StrEnum):
    OPENED = "mfc.obligation.opened"
    REMINDED = "mfc.obligation.reminded"
    ESCALATED = "mfc.obligation.escalated"
    BREACHED = "mfc.obligation.breached"
    WAITING = "mfc.obligation.waiting"
    SATISFIED = "mfc.obligation.satisfied"
    MOOT = "mfc.obligation.moot"


class AlertEvent(StrEnum):
    SENT = "mfc.alert.sent"
    ACKNOWLEDGED = "mfc.alert.acknowledged"
    FAILED = "mfc.alert.failed"


class PromptEvent(StrEnum):
    ISSUED = "mfc.prompt.issued"
    COMPLETED = "mfc.prompt.completed"
    OVERDUE = "mfc.prompt.overdue"
    ENDED = "mfc.prompt.ended"


CHECKPOINT_SIGNED = "mfc.audit.checkpoint.signed"


class ScheduleEvent(StrEnum):
    OVERRIDE_ADDED = "mfc.schedule.override_added"
    OVERRIDE_REMOVED = "mfc.schedule.override_removed"


class FeedEvent(StrEnum):
    SILENT = "mfc.feed.silent"
    RESUMED = "mfc.feed.resumed"


class PolicyEvent(StrEnum):
    ADOPTED = "mfc.policy.adopted"


class _Published(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Kind = Annotated[str, Field(description="The policy rule's id, e.g. ncmec_report")]

# --------------------------------------------------------------------------- #
# Obligations (notifier -> mfc.obligations.v1)
# --------------------------------------------------------------------------- #


class ObligationRef(_Published):
    obligation_id: UUID
    episode_id: UUID
    county_code: str | None
    kind: Kind


class ObligationOpened(ObligationRef):
    """``mfc.obligation.opened``: a legal notice is now owed, with its deadline."""

    jurisdiction: str
    title: str
    clock: str
    """The policy clock the deadline counts from (e.g. ``agency_learned_at``)."""
    clock_start: AwareDatetime
    due_at: AwareDatetime
    policy_digest: str
    """SHA-256 of the policy file the rule was frozen from."""
    opened_by: Literal["reported", "located", "screening", "update"]
    source: str
    """The law or policy the rule comes from."""
    report_items: list[str]


class ObligationStep(ObligationRef):
    """``mfc.obligation.reminded`` / ``.escalated`` / ``.breached``: a step of the
    escalation chain fired (``breached`` once, at the deadline)."""

    level: int
    level_name: str
    due_at: AwareDatetime
    alert_id: UUID | None
    """The alert raised, or none when the step was quiet (acked or snoozed)."""


class ObligationWaiting(ObligationRef):
    """``mfc.obligation.waiting``: a notice came but does not satisfy yet."""

    reason: str
    notification_event_id: str


class ObligationSatisfied(ObligationRef):
    """``mfc.obligation.satisfied``: the notice was given, on time or late."""

    clock_start: AwareDatetime
    due_at: AwareDatetime
    satisfied_at: AwareDatetime
    on_time: bool
    reference_number: str | None
    notification_event_id: str


class ObligationMoot(ObligationRef):
    """``mfc.obligation.moot``: the episode closed before the notice was owed."""

    reason: str
    was_breached: bool
    due_at: AwareDatetime


# --------------------------------------------------------------------------- #
# Alerts (notifier and followup -> mfc.alerts.v1)
# --------------------------------------------------------------------------- #


class AlertSent(_Published):
    """``mfc.alert.sent``: a page or email reached its channel."""

    alert_id: UUID
    episode_id: UUID | None
    channel: str
    attempts: int
    scheduled_at: AwareDatetime
    sent_at: AwareDatetime


class AlertFailed(_Published):
    """``mfc.alert.failed``: a delivery gave up after its retries."""

    alert_id: UUID
    episode_id: UUID | None
    channel: str
    attempts: int
    error: str | None


class AlertAcknowledged(_Published):
    """``mfc.alert.acknowledged``: someone took the alert (and maybe snoozed it)."""

    alert_id: UUID
    episode_id: UUID
    obligation_id: UUID
    acked_by: Identifier
    acked_at: AwareDatetime
    snoozed_until: AwareDatetime | None
    level: int
    """The escalation level acked; it and the levels below fall quiet."""


# --------------------------------------------------------------------------- #
# Prompts (followup -> mfc.prompts.v1)
# --------------------------------------------------------------------------- #


class PromptIssued(_Published):
    """``mfc.prompt.issued``: a periodic task is due (contact, report item, ...)."""

    prompt_id: UUID
    episode_id: UUID
    kind: Kind
    title: str
    occurrence: int
    assignee: str
    issued_at: AwareDatetime
    due_at: AwareDatetime
    missing_items: list[str] | None = None


class PromptCompleted(PromptIssued):
    """``mfc.prompt.completed``: done, by a person or by the event it waited for."""

    completed_by: str
    completed_at: AwareDatetime
    on_time: bool


class PromptOverdue(PromptIssued):
    """``mfc.prompt.overdue``: past due, escalated."""

    escalated_to: str


class PromptEnded(PromptIssued):
    """``mfc.prompt.ended``: no longer needed (episode closed, item supplied)."""

    reason: str


# --------------------------------------------------------------------------- #
# Audit checkpoints (audit -> mfc.audit.checkpoints.v1)
# --------------------------------------------------------------------------- #


class CheckpointSigned(_Published):
    """``mfc.audit.checkpoint.signed``: a signed tree head of the audit log."""

    log: str
    tree_size: int
    root_hash: str
    """Base64 SHA-256 Merkle root (RFC 6962)."""
    issued_at: str
    key_id: str
    signature: str
    """Base64 Ed25519 over the RFC 8785 JSON of log, tree_size, root_hash, issued_at."""
    note: str | None = None
    """The same tree head as a C2SP signed note (origin, size, root; the log key's
    note signature), which a witness co-signs (docs/audit.md)."""


# --------------------------------------------------------------------------- #
# County feeds (intake -> mfc.feeds.v1)
# --------------------------------------------------------------------------- #


class FeedSilent(_Published):
    """``mfc.feed.silent``: nothing came from a county's own system for longer than
    it may keep quiet. Published once per silence, by whichever intake replica saw
    it first; the notifier pages the county's on-call."""

    county_code: str
    last_event_at: AwareDatetime
    """When the county's system was last heard from (or watching began)."""
    via: str
    """How it was last heard from: http, kafka, or watch (never heard yet)."""
    allowed_seconds: float
    """The silence the county may keep (``INTAKE_FEED_SILENCE_AFTER``)."""
    noticed_at: AwareDatetime


class FeedResumed(_Published):
    """``mfc.feed.resumed``: a silent county's system was heard from again."""

    county_code: str
    last_event_at: AwareDatetime
    via: str
    silent_since: AwareDatetime
    """The ``last_event_at`` of the silence that ended."""
    noticed_at: AwareDatetime


# --------------------------------------------------------------------------- #
# On-call schedules (notifier -> mfc.schedules.v1)
# --------------------------------------------------------------------------- #


class OverrideAdded(_Published):
    """``mfc.schedule.override_added``: someone covers a schedule for a while,
    added at runtime (a sick day, a shift swap)."""

    override_id: UUID
    schedule: str
    contact: str
    """The policy contact who is on call instead, for the window."""
    start: AwareDatetime
    end: AwareDatetime
    reason: str
    added_by: Identifier
    added_at: AwareDatetime


class OverrideRemoved(OverrideAdded):
    """``mfc.schedule.override_removed``: the override no longer applies (from
    ``removed_at``; the rotation decides again)."""

    removed_by: Identifier
    removed_at: AwareDatetime
    removal_reason: str | None


# --------------------------------------------------------------------------- #
# Policies (notifier -> mfc.policies.v1)
# --------------------------------------------------------------------------- #


class PolicyAdopted(_Published):
    """``mfc.policy.adopted``: a service began deciding deadlines by this policy
    file. Its event id is derived from the digest, so each version is in the trail
    once, whichever replica or restart announced it first."""

    digest: PolicyDigest
    version: str
    """The file's own ``version`` field."""
    file_name: str
    content: Annotated[str, Field(max_length=2_000_000)]
    """The file exactly as loaded (UTF-8): its sha256 is ``digest``."""
    adopted_at: AwareDatetime
    adopted_by: Identifier
    """The service, e.g. ``notifier``."""


PUBLISHED: dict[str, dict[str, type[BaseModel]]] = {
    topics.OBLIGATIONS: {
        ObligationEvent.OPENED: ObligationOpened,
        ObligationEvent.REMINDED: ObligationStep,
        ObligationEvent.ESCALATED: ObligationStep,
        ObligationEvent.BREACHED: ObligationStep,
        ObligationEvent.WAITING: ObligationWaiting,
        ObligationEvent.SATISFIED: ObligationSatisfied,
        ObligationEvent.MOOT: ObligationMoot,
    },
    topics.ALERTS: {
        AlertEvent.SENT: AlertSent,
        AlertEvent.ACKNOWLEDGED: AlertAcknowledged,
        AlertEvent.FAILED: AlertFailed,
    },
    topics.PROMPTS: {
        PromptEvent.ISSUED: PromptIssued,
        PromptEvent.COMPLETED: PromptCompleted,
        PromptEvent.OVERDUE: PromptOverdue,
        PromptEvent.ENDED: PromptEnded,
    },
    topics.AUDIT_CHECKPOINTS: {CHECKPOINT_SIGNED: CheckpointSigned},
    topics.FEEDS: {FeedEvent.SILENT: FeedSilent, FeedEvent.RESUMED: FeedResumed},
    topics.SCHEDULES: {
        ScheduleEvent.OVERRIDE_ADDED: OverrideAdded,
        ScheduleEvent.OVERRIDE_REMOVED: OverrideRemoved,
    },
    topics.POLICIES: {PolicyEvent.ADOPTED: PolicyAdopted},
}
"""Each service topic's event types with their data models."""


class ContractError(ValueError):
    """A producer built data its event type's model refuses: a bug to fix, loudly."""


def checked(topic: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as given, once its type's model on ``topic`` accepts it.

    Raises:
        ContractError: unknown type for the topic, or data the model refuses.
    """
    model = PUBLISHED.get(topic, {}).get(event_type)
    if model is None:
        raise ContractError(f"{event_type} is not an event type of {topic}")
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(
            f"{event_type}: {describe_validation_error(exc, prefix='data')}"
        ) from exc
    return data


_TOPIC_OF = {type_: topic for topic, types in PUBLISHED.items() for type_ in types}


@dataclass(frozen=True)
class Outgoing:
    """An event for the outbox: its topic and its CloudEvent."""

    topic: str
    event: CloudEvent


def outgoing(
    event_type: str,
    data: BaseModel,
    *,
    source: str,
    subject: UUID | str,
    time: datetime,
) -> Outgoing:
    """The event of ``event_type`` with ``data``, built from its published model (so
    it was validated when the model was made). Fields left unset are left out.

    Raises:
        ContractError: ``data`` is not the model of ``event_type``.
    """
    topic = _TOPIC_OF.get(event_type)
    if topic is None or type(data) is not PUBLISHED[topic][event_type]:
        raise ContractError(f"{event_type} does not carry {type(data).__name__}")
    payload = data.model_dump(mode="json", exclude_unset=True)
    return Outgoing(
        topic,
        CloudEvent.new(
            type=event_type,
            source=source,
            subject=str(subject),
            data=payload,
            time=time,
        ),
    )
