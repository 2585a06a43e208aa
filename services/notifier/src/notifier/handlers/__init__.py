"""The notifier's service layer, by feature: obligations from episode events
(``obligations``), escalation steps fired by the timers (``steps``),
acknowledgements (``acks``) and county feeds fallen silent (``feeds``). Each handler loads through the port, asks the pure
rules in ``notifier.domain``, saves and emits, in the transaction it is given."""

from notifier.handlers.acks import AckOutcome, AlertNotFoundError, acknowledge
from notifier.handlers.common import Deps, NotifierMetrics
from notifier.handlers.feeds import apply_feed_event
from notifier.handlers.obligations import apply_episode_event
from notifier.handlers.steps import fire_batch, fire_steps

__all__ = [
    "AckOutcome",
    "AlertNotFoundError",
    "Deps",
    "NotifierMetrics",
    "acknowledge",
    "apply_episode_event",
    "apply_feed_event",
    "fire_batch",
    "fire_steps",
]
