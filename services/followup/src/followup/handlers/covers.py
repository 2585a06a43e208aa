"""Covers: the notifier's on-call overrides (``mfc.schedules.v1``) kept here, so
that an overdue task escalated to a schedule pages whoever covers it, exactly as
the notifier's deadline alerts do."""

from followup.ports import Followup
from shared.events import CloudEvent
from shared.published import OverrideAdded, OverrideRemoved, ScheduleEvent


async def apply_schedule_event(port: Followup, event: CloudEvent) -> None:
    if event.type == ScheduleEvent.OVERRIDE_ADDED:
        added = OverrideAdded.model_validate(event.data)
        await port.add_cover(
            added.override_id, added.schedule, added.contact, added.start, added.end
        )
    elif event.type == ScheduleEvent.OVERRIDE_REMOVED:
        removed = OverrideRemoved.model_validate(event.data)
        await port.remove_cover(removed.override_id, removed.removed_at)
