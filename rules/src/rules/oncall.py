"""Who an escalation level alerts at a given moment: on-call rotations and the
targets of a chain's levels resolved to people. Pure: the moment is passed in."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.alerts import Recipient
from shared.policy import Policy, Schedule

Staff = Mapping[str, Mapping[str, Any]]
"""An episode's people by role (``caseworker``, ``supervisor``): id, name, email."""


def on_call(schedule: Schedule, at: datetime) -> str:
    """The on-call rotation: an override covering ``at``, else whose turn it is."""
    for override in schedule.overrides:
        if override.start <= at < override.end:
            return override.contact
    turns = (at - schedule.start) // schedule.shift  # floor: before start too
    return schedule.members[turns % len(schedule.members)]


def resolve(
    policy: Policy,
    notify: list[str],
    staff: Staff,
    at: datetime,
    covers: Mapping[str, str] | None = None,
) -> list[Recipient]:
    """A level's ``notify`` targets as people (id, name, email) at a moment.
    ``covers``: schedule name -> the contact covering it at that moment by an
    override added at runtime (it wins over the file's overrides and the turns)."""
    return [_person(policy, target, staff, at, covers or {}) for target in notify]


def _person(
    policy: Policy,
    target: str,
    staff: Staff,
    at: datetime,
    covers: Mapping[str, str],
) -> Recipient:
    """One target: the episode's ``caseworker`` or ``supervisor`` from its staff, a
    ``contact:<id>``, or whoever ``schedule:<name>`` has on call at that moment."""
    kind, _, ref = target.partition(":")
    if kind in ("caseworker", "supervisor"):
        member = staff[kind]
        return Recipient(str(member["id"]), str(member["name"]), member.get("email"))
    if kind == "schedule":
        cover = covers.get(ref)
        # A cover naming a contact since removed from the policy is ignored: the
        # rotation decides, rather than no one being paged at all.
        contact_id = (
            cover
            if cover in policy.document.contacts
            else on_call(policy.document.schedules[ref], at)
        )
    else:
        contact_id = ref
    contact = policy.document.contacts[contact_id]
    return Recipient(contact_id, contact.name, contact.email)
