"""Followup's composition root: the port over PostgreSQL, the handlers' dependencies,
and the Kafka, timer and HTTP entrypoints that call the handlers."""

from functools import partial

from fastapi import FastAPI

from followup import handlers
from followup.adapters.postgres import PostgresFollowup
from followup.config import FollowupSettings
from followup.entrypoints import http, stream
from followup.gauges import PromptGauges
from followup.ports import PortFactory
from shared.alerting import AlertingContext, add_alerting_workers
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: FollowupSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime(
        "followup",
        settings,
        clock or SystemClock(),
        components=("timers", "deliveries"),
    )
    ctx = AlertingContext.of(runtime, settings)
    deps = handlers.Deps(ctx, handlers.FollowupMetrics(runtime.registry))
    port_of: PortFactory = partial(PostgresFollowup, route=ctx.route)
    # A consumed batch's timer steps and events are written once, at its end.
    stream.register(
        runtime, partial(PostgresFollowup, route=ctx.route, defer=True), deps
    )
    add_alerting_workers(
        runtime,
        settings,
        handlers.fire_batch(
            partial(PostgresFollowup, route=ctx.route, defer=True), deps
        ),
    )
    runtime.add_worker(
        lambda pool: PromptGauges(
            pool, registry=runtime.registry, interval=settings.watchdog_interval
        )
    )
    app = FastAPI(
        title="missing-from-care followup", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime, port_of, deps))
    add_ops_routes(app, runtime)
    return app
