"""The notifier's composition root."""

from functools import partial

import asyncpg
from fastapi import FastAPI

from notifier import handlers
from notifier.config import NotifierSettings
from notifier.entrypoints import http, stream
from notifier.watchdog import Watchdog
from shared.alerting import AlertingContext, add_alerting_workers
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: NotifierSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime(
        "notifier",
        settings,
        clock or SystemClock(),
        components=("timers", "deliveries"),
    )
    ctx = AlertingContext.of(runtime, settings)
    metrics = handlers.NotifierMetrics(runtime.registry)
    stream.register(runtime, ctx, metrics)
    add_alerting_workers(
        runtime, settings, partial(handlers.fire_steps, ctx=ctx, metrics=metrics)
    )

    def watchdog(pool: asyncpg.Pool) -> Watchdog:
        return Watchdog(
            pool,
            clock=runtime.clock,
            registry=runtime.registry,
            interval=settings.watchdog_interval,
            margin=settings.watchdog_margin,
            heartbeat_url=settings.heartbeat_url,
        )

    runtime.add_worker(watchdog)
    app = FastAPI(
        title="missing-from-care notifier", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime, ctx))
    add_ops_routes(app, runtime)
    return app
