"""The notifier's service layer, by feature: obligations from episode events
(``obligations``), escalation steps fired by the timers (``steps``),
acknowledgements (``acks``), county feeds fallen silent (``feeds``) and on-call
overrides added at runtime (``schedules``). Each handler loads through the port, asks the pure
rules in ``notifier.domain``, saves and emits, in the transaction it is given."""

from notifier.handlers.acks import AckOutcome, AlertNotFoundError, acknowledge
from notifier.handlers.common import Deps, NotifierMetrics
from notifier.handlers.feeds import apply_feed_event
from notifier.handlers.obligations import apply_episode_event, apply_episode_events
from notifier.handlers.schedules import (
    OverrideNotFoundError,
    ScheduleNotFoundError,
    add_override,
    remove_override,
)
from notifier.handlers.steps import fire_batch, fire_steps

__all__ = [
    "AckOutcome",
    "AlertNotFoundError",
    "Deps",
    "NotifierMetrics",
    "OverrideNotFoundError",
    "ScheduleNotFoundError",
    "acknowledge",
    "add_override",
    "apply_episode_event",
    "apply_episode_events",
    "apply_feed_event",
    "fire_batch",
    "fire_steps",
    "remove_override",
]
