"""What an obligation's alert says: subject, text and the webhook's details."""

from datetime import datetime
from uuid import UUID

from notifier.domain.model import Obligation
from shared.alerts import Alert, Recipient


def obligation_alert(
    obligation: Obligation,
    *,
    alert_id: UUID,
    step_key: str,
    level: int,
    reason: str,
    recipients: tuple[Recipient, ...],
    scheduled_at: datetime,
    episode_url: str,
    alert_url: str,
) -> Alert:
    """The alert for one step: initials only, the due time in UTC, where to act,
    and that only recording the notice closes the duty."""
    due = obligation.due_at
    level_name = obligation.chain.levels[level].name
    state = "OVERDUE since" if reason == "breached" else "due"
    waiting = (
        f"\nStill open: {obligation.waiting_reason}"
        if obligation.waiting_reason
        else ""
    )
    child = obligation.child_initials
    subject = f"[{reason.upper()}] {obligation.title}: child {child}, {state} {due:%Y-%m-%d %H:%M} UTC"
    text = (
        f"{obligation.title}\n"
        f"Child: {child}  Episode: {obligation.episode_id}\n"
        f"{state.capitalize()} {due:%Y-%m-%d %H:%M} UTC ({reason}, level {level}: {level_name})"
        f"{waiting}\n"
        f"Episode: {episode_url}\n"
        f"Open and acknowledge: {alert_url}\n"
        f"Only recording the notice itself closes this duty.\n"
    )
    details = {
        "county_code": obligation.county_code,
        "obligation": {
            "id": str(obligation.id),
            "kind": obligation.kind,
            "title": obligation.title,
            "due_at": due.isoformat(),
            "waiting_reason": obligation.waiting_reason,
        },
        "step": step_key,
        "level": level,
        "level_name": level_name,
        "alert_url": alert_url,
    }
    return Alert(
        id=alert_id,
        episode_id=obligation.episode_id,
        child=child,
        reason=reason,
        subject=subject,
        text=text,
        episode_url=episode_url,
        recipients=recipients,
        scheduled_at=scheduled_at,
        details=details,
    )
