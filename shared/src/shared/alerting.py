"""Wiring shared by the services that alert people (notifier, followup): the durable
timer scheduler and the delivery worker, run while the service runs."""

from dataclasses import dataclass

import asyncpg

from shared.alerts import Route
from shared.clock import Clock
from shared.config import AlertingSettings
from shared.delivery import DeliveryWorker, channels_from
from shared.policy import Policy, load_policy
from shared.runtime import ServiceRuntime
from shared.timers import FireBatch, TimerScheduler


@dataclass(frozen=True)
class AlertingContext:
    """What the alerting services' handlers need besides the connection."""

    policy: Policy
    clock: Clock
    source: str
    episode_url_template: str
    alert_url_template: str
    route: Route

    @classmethod
    def of(
        cls, runtime: ServiceRuntime, settings: AlertingSettings
    ) -> "AlertingContext":
        return cls(
            policy=load_policy(
                settings.policy_path
            ),  # invalid policy: fail at start-up
            clock=runtime.clock,
            source=runtime.source,
            episode_url_template=settings.episode_url_template,
            alert_url_template=settings.alert_url_template,
            route=Route(settings.webhook_url, settings.smtp_host is not None),
        )


def add_alerting_workers(
    runtime: ServiceRuntime, settings: AlertingSettings, fire: FireBatch
) -> None:
    channels = channels_from(settings)

    def scheduler(pool: asyncpg.Pool) -> TimerScheduler:
        return TimerScheduler(
            pool,
            fire_batch=fire,
            clock=runtime.clock,
            registry=runtime.registry,
            poll_interval=settings.timer_poll_interval,
        )

    def delivery(pool: asyncpg.Pool) -> DeliveryWorker:
        return DeliveryWorker(
            pool,
            channels,
            clock=runtime.clock,
            registry=runtime.registry,
            source=runtime.source,
            max_attempts=settings.delivery_max_attempts,
            initial_backoff=settings.delivery_initial_backoff,
            poll_interval=settings.timer_poll_interval,
        )

    runtime.add_worker(scheduler)
    runtime.add_worker(delivery)
