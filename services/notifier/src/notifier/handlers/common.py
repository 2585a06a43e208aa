"""What the notifier's handlers share: their dependencies, their metrics (counted
here, never in the domain), the events they build and how a step of the domain
becomes a timer row."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from notifier.domain import steps
from notifier.domain.model import EpisodeRecord, Obligation
from notifier.ports import Notifier
from shared.alerting import AlertingContext
from shared.alerts import Alert, Route
from shared.clock import Clock
from shared.policy import Defaults, Policy
from shared.published import Outgoing, outgoing
from shared.timers import Move, Step, Timer

logger = logging.getLogger(__name__)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.opened = Counter(
            "mfc_obligations_opened_total",
            "Obligations opened",
            ["kind", "jurisdiction"],
            registry=registry,
        )
        self.breaches = Counter(
            "mfc_obligation_breaches_total",
            "Obligations whose deadline passed unsatisfied",
            ["kind", "jurisdiction"],
            registry=registry,
        )
        self.satisfied = Counter(
            "mfc_obligations_satisfied_total",
            "Obligations satisfied",
            ["kind", "on_time"],
            registry=registry,
        )
        self.alerts = Counter(
            "mfc_alerts_raised_total", "Alerts raised", ["reason"], registry=registry
        )

    def count_fired(
        self,
        fired: Sequence[tuple[Obligation, steps.Firing, Alert | None]],
        raised: set[UUID],
    ) -> None:
        for obligation, firing, alert in fired:
            if firing.first_breach:
                self.breaches.labels(obligation.kind, obligation.jurisdiction).inc()
            if alert is not None and alert.id in raised:
                self.alerts.labels(firing.reason).inc()


@dataclass(frozen=True)
class Deps:
    """What handlers need besides the port: the policy, clock and routes, metrics."""

    ctx: AlertingContext
    metrics: NotifierMetrics

    @classmethod
    def detached(
        cls,
        policy: Policy,
        clock: Clock,
        *,
        source: str,
        episode_url_template: str = "{episode_id}",
        alert_url_template: str = "{alert_id}",
    ) -> "Deps":
        """Handlers' dependencies outside a running service (unit tests, the
        what-if replay): no delivery route, metrics in a registry of their own."""
        ctx = AlertingContext(
            policy=policy,
            clock=clock,
            source=source,
            episode_url_template=episode_url_template,
            alert_url_template=alert_url_template,
            route=Route(webhook_url=None, email_enabled=False),
        )
        return cls(ctx, NotifierMetrics(CollectorRegistry()))

    def now(self) -> datetime:
        return self.ctx.clock.now()

    @property
    def defaults(self) -> Defaults:
        return self.ctx.policy.document.defaults

    def event(
        self, event_type: str, data: BaseModel, episode_id: UUID, now: datetime
    ) -> Outgoing:
        """An event built from its published model, keyed by its episode (so one
        episode's events stay in order)."""
        return outgoing(
            event_type, data, source=self.ctx.source, subject=episode_id, time=now
        )


async def lock_episode(
    port: Notifier, episode_id: UUID, *, warn: str | None = None
) -> EpisodeRecord | None:
    episode = await port.lock_episode(episode_id)
    if episode is None and warn is not None:
        # Intake publishes `reported` first on the same partition, so this means the
        # report was never seen by us: nothing to attach deadlines to.
        logger.warning("%s for an episode the notifier never saw reported", warn)
    return episode


def pending_of(timer: Timer) -> steps.Pending:
    return steps.Pending.of(timer.step_key, timer.kind, timer.fire_at, timer.payload)


def timer_step(subject_id: UUID, step: steps.Pending) -> Step:
    return Step(subject_id, step.key, step.kind, step.fire_at, step.payload())


def timer_move(step: steps.Pending) -> Move:
    return Move(step.key, step.kind, step.fire_at, step.payload())
