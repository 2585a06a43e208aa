"""The notifier's composition root: the port over PostgreSQL, the handlers'
dependencies, and the Kafka, timer and HTTP entrypoints that call the handlers."""

from functools import partial

import asyncpg
from fastapi import FastAPI

from notifier import handlers
from notifier.adapters.postgres import PostgresNotifier
from notifier.config import NotifierSettings
from notifier.entrypoints import http, schedules, stream
from notifier.ports import PortFactory
from notifier.watchdog import Watchdog
from shared.adoption import announce_policy
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
    deps = handlers.Deps(ctx, handlers.NotifierMetrics(runtime.registry))
    port_of: PortFactory = partial(PostgresNotifier, route=ctx.route)
    # A consumed batch's timer steps and events are written once, at its end.
    stream.register(
        runtime, partial(PostgresNotifier, route=ctx.route, defer=True), deps
    )
    add_alerting_workers(runtime, settings, handlers.fire_batch(port_of, deps))

    def watchdog(pool: asyncpg.Pool) -> Watchdog:
        return Watchdog(
            pool,
            clock=runtime.clock,
            registry=runtime.registry,
            interval=settings.watchdog_interval,
            margin=settings.watchdog_margin,
            heartbeat_url=settings.heartbeat_url,
            timeout=settings.watchdog_timeout,
        )

    runtime.add_worker(watchdog)
    announce_policy(runtime, ctx.policy, by="notifier")
    app = FastAPI(
        title="missing-from-care notifier", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime, port_of, deps))
    app.include_router(schedules.create_router(runtime, port_of, deps))
    add_ops_routes(app, runtime)
    return app
