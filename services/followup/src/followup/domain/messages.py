"""What followup says: the data of its published events and the wording of its
alerts, composed from a prompt. Pure: ids and times are passed in."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from followup.domain.model import Episode, Prompt
from followup.domain.occurrences import AlertReason, on_time
from shared.alerts import Alert, Recipient
from shared.published import PromptCompleted, PromptEnded, PromptIssued, PromptOverdue


def _fields(prompt: Prompt) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "prompt_id": prompt.id,
        "episode_id": prompt.episode_id,
        "kind": prompt.rule_id,
        "title": prompt.title,
        "occurrence": prompt.occurrence,
        "assignee": prompt.assignee,
        "issued_at": prompt.issued_at,
        "due_at": prompt.due_at,
    }
    # Left unset (so left out of the event) unless the prompt names items.
    if prompt.missing_items is not None:
        fields["missing_items"] = list(prompt.missing_items)
    return fields


def issued(prompt: Prompt) -> PromptIssued:
    return PromptIssued(**_fields(prompt))


def overdue(prompt: Prompt, *, escalated_to: str) -> PromptOverdue:
    return PromptOverdue(**_fields(prompt), escalated_to=escalated_to)


def completed(prompt: Prompt) -> PromptCompleted:
    if prompt.completed_by is None or prompt.completed_at is None:
        raise ValueError("the prompt is not completed")
    return PromptCompleted(
        **_fields(prompt),
        completed_by=prompt.completed_by,
        completed_at=prompt.completed_at,
        on_time=on_time(prompt),
    )


def ended(prompt: Prompt, *, reason: str) -> PromptEnded:
    return PromptEnded(**_fields(prompt), reason=reason)


def prompt_alert(
    prompt: Prompt,
    episode: Episode,
    people: Sequence[Recipient],
    *,
    reason: AlertReason,
    alert_id: UUID,
    episode_url_template: str,
    scheduled_at: datetime,
) -> Alert:
    """The alert for a prompt issued or gone overdue, to the people resolved for it;
    the webhook body carries the prompt under ``prompt``."""
    url = episode_url_template.format(episode_id=prompt.episode_id)
    child = episode.child_initials
    due = f"{prompt.due_at:%Y-%m-%d %H:%M} UTC"
    missing = list(prompt.missing_items) if prompt.missing_items is not None else None
    text = (
        f"{prompt.title}\nChild: {child}  Episode: {prompt.episode_id}\n"
        + (f"Still missing: {', '.join(missing)}\n" if missing else "")
        + f"Due {due}\nEpisode: {url}\n"
        "Mark it done on the episode page.\n"
    )
    return Alert(
        id=alert_id,
        episode_id=prompt.episode_id,
        child=child,
        reason=reason.value,
        subject=f"[{reason.upper()}] {prompt.title}: child {child}, due {due}",
        text=text,
        episode_url=url,
        recipients=tuple(people),
        scheduled_at=scheduled_at,
        details={
            "prompt": {
                "id": str(prompt.id),
                "kind": prompt.rule_id,
                "title": prompt.title,
                "occurrence": prompt.occurrence,
                "due_at": prompt.due_at.isoformat(),
                "missing_items": missing,
            }
        },
    )
