"""Followup's composition root."""

from functools import partial

from fastapi import FastAPI

from followup import handlers
from followup.config import FollowupSettings
from followup.entrypoints import http, stream
from followup.gauges import PromptGauges
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
    metrics = handlers.FollowupMetrics(runtime.registry)
    stream.register(runtime, ctx, metrics)
    add_alerting_workers(
        runtime, settings, partial(handlers.fire_step, ctx=ctx, metrics=metrics)
    )
    runtime.add_worker(
        lambda pool: PromptGauges(
            pool, registry=runtime.registry, interval=settings.watchdog_interval
        )
    )
    app = FastAPI(
        title="missing-from-care followup", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime, ctx, metrics))
    add_ops_routes(app, runtime)
    return app
