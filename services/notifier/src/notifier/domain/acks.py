"""What an acknowledgement does: the obligation's alerts fall quiet up to the acked
level until the snooze ends, and the pending step moves so that the end of the
snooze alerts again if the duty is still undone. No I/O, no clock."""

from dataclasses import dataclass
from datetime import datetime

from notifier.domain import steps
from notifier.domain.model import Obligation, ObligationStatus
from shared.policy import Defaults


@dataclass(frozen=True)
class Snoozing:
    until: datetime
    level: int
    """The highest level quiet until then."""


def snooze(
    obligation: Obligation, acked_level: int, *, defaults: Defaults, now: datetime
) -> Snoozing | None:
    """The snooze an ack of an alert at ``acked_level`` sets; none once the
    obligation is closed. An ack never lowers the level an earlier one quiets."""
    if obligation.status != ObligationStatus.OPEN:
        return None
    until = now + (obligation.snooze or defaults.snooze)
    earlier = obligation.snoozed()
    level = acked_level
    if earlier.level is not None and steps.is_snoozed(
        level, earlier.level, earlier.until, now
    ):
        level = max(level, earlier.level)
    return Snoozing(until, level)


def resume(
    obligation: Obligation,
    pending: steps.Pending,
    snoozing: Snoozing,
    *,
    defaults: Defaults,
) -> steps.Pending | None:
    """Where the pending step goes so the end of the snooze alerts again; None
    leaves it where it is (the deadline comes first, or the breach speaks)."""
    return steps.after_ack(obligation.timing(defaults), pending, snoozing.until)
