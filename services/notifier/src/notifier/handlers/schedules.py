"""On-call overrides added and removed at runtime: checked by the pure rules
(``notifier.domain.schedules``), stored, and written to the trail
(``mfc.schedules.v1``) in one transaction. Every replica reads them when it pages,
so a change is in force at once everywhere."""

from typing import Any
from uuid import UUID, uuid4

from notifier.domain.schedules import OverrideDraft, RuntimeOverride, check_new
from notifier.handlers.common import Deps
from notifier.ports import Notifier
from shared.published import (
    Outgoing,
    OverrideAdded,
    OverrideRemoved,
    ScheduleEvent,
    outgoing,
)


class ScheduleNotFoundError(LookupError):
    pass


class OverrideNotFoundError(LookupError):
    pass


async def add_override(
    port: Notifier, schedule: str, draft: OverrideDraft, *, by: str, deps: Deps
) -> RuntimeOverride:
    """Add an override unless the rules refuse it (``OverrideRefusedError``)."""
    policy, now = deps.ctx.policy, deps.now()
    if schedule not in policy.document.schedules:
        raise ScheduleNotFoundError(schedule)
    await port.lock_schedule(schedule)
    existing = await port.overrides_in_force(schedule, now)
    check_new(policy, schedule, draft, existing=existing, now=now)
    added = RuntimeOverride(
        uuid4(), schedule, draft.contact, draft.start, draft.end, draft.reason, by, now
    )
    await port.add_override(added)
    data = OverrideAdded(**_described(added))
    await port.emit([_event(ScheduleEvent.OVERRIDE_ADDED, data, deps)])
    return added


async def remove_override(
    port: Notifier,
    schedule: str,
    override_id: UUID,
    *,
    by: str,
    reason: str | None,
    deps: Deps,
) -> RuntimeOverride:
    """End an override not over yet; the rotation decides again from now."""
    now = deps.now()
    removed = await port.remove_override(
        schedule, override_id, by=by, reason=reason, now=now
    )
    if removed is None:
        raise OverrideNotFoundError(override_id)
    data = OverrideRemoved(
        **_described(removed), removed_by=by, removed_at=now, removal_reason=reason
    )
    await port.emit([_event(ScheduleEvent.OVERRIDE_REMOVED, data, deps)])
    return removed


def _described(o: RuntimeOverride) -> dict[str, Any]:
    return {
        "override_id": o.id,
        "schedule": o.schedule,
        "contact": o.contact,
        "start": o.start,
        "end": o.end,
        "reason": o.reason,
        "added_by": o.created_by,
        "added_at": o.created_at,
    }


def _event(event_type: str, data: OverrideAdded, deps: Deps) -> Outgoing:
    """Keyed by the schedule: its changes stay in order."""
    return outgoing(
        event_type, data, source=deps.ctx.source, subject=data.schedule, time=deps.now()
    )
