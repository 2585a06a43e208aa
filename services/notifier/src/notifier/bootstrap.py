"""The notifier's composition root."""

from functools import partial

import asyncpg
from fastapi import FastAPI

from notifier import handlers
from notifier.config import NotifierSettings
from notifier.entrypoints import http, stream
from notifier.watchdog import Watchdog
from shared.clock import Clock, SystemClock
from shared.delivery import Channel, DeliveryWorker, EmailChannel, WebhookChannel
from shared.policy import load_policy
from shared.runtime import ServiceRuntime, add_ops_routes
from shared.timers import TimerScheduler


def channels(settings: NotifierSettings) -> dict[str, Channel]:
    configured: dict[str, Channel] = {}
    if settings.webhook_url:
        if settings.webhook_secret is None:
            raise ValueError(
                "NOTIFIER_WEBHOOK_SECRET is required with NOTIFIER_WEBHOOK_URL"
            )
        configured["webhook"] = WebhookChannel(
            settings.webhook_secret.get_secret_value()
        )
    if settings.smtp_host:
        configured["email"] = EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
        )
    return configured


def create_app(settings: NotifierSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime(
        "notifier",
        settings,
        clock or SystemClock(),
        components=("timers", "deliveries"),
    )
    policy = load_policy(settings.policy_path)  # invalid policy: fail at start-up
    ctx = handlers.NotifierContext(
        policy=policy,
        clock=runtime.clock,
        source=runtime.source,
        episode_url_template=settings.episode_url_template,
        webhook_url=settings.webhook_url,
        email_enabled=settings.smtp_host is not None,
    )
    metrics = handlers.NotifierMetrics(runtime.registry)
    configured_channels = channels(settings)
    stream.register(runtime, ctx, metrics)

    def make_scheduler(pool: asyncpg.Pool) -> TimerScheduler:
        return TimerScheduler(
            pool,
            partial(handlers.fire_step, ctx=ctx, metrics=metrics),
            clock=runtime.clock,
            registry=runtime.registry,
            poll_interval=settings.timer_poll_interval,
        )

    def make_delivery(pool: asyncpg.Pool) -> DeliveryWorker:
        return DeliveryWorker(
            pool,
            configured_channels,
            clock=runtime.clock,
            registry=runtime.registry,
            on_sent=partial(handlers.delivery_sent, ctx=ctx),
            on_failed=partial(handlers.delivery_failed, ctx=ctx),
            max_attempts=settings.delivery_max_attempts,
            initial_backoff=settings.delivery_initial_backoff,
            poll_interval=settings.timer_poll_interval,
        )

    def make_watchdog(pool: asyncpg.Pool) -> Watchdog:
        return Watchdog(
            pool,
            clock=runtime.clock,
            registry=runtime.registry,
            interval=settings.watchdog_interval,
            margin=settings.watchdog_margin,
            heartbeat_url=settings.heartbeat_url,
        )

    runtime.add_worker(make_scheduler)
    runtime.add_worker(make_delivery)
    runtime.add_worker(make_watchdog)
    app = FastAPI(
        title="missing-from-care notifier", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime, ctx))
    add_ops_routes(app, runtime)
    return app
