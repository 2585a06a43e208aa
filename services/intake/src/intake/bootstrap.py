"""Intake's composition root: settings in, a runnable ASGI app out."""

from fastapi import FastAPI

from intake import handlers
from intake.config import IntakeSettings
from intake.entrypoints import http, stream
from intake.feeds import FeedWatch
from shared.adoption import announce_policy
from shared.clock import Clock, SystemClock
from shared.policy import load_policy
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: IntakeSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime("intake", settings, clock or SystemClock())
    ctx = handlers.IntakeContext(
        clock=runtime.clock,
        served_counties=settings.counties,
        skew=settings.clock_skew_allowance,
        source=runtime.source,
        policy=load_policy(settings.policy_path),  # invalid policy: fail at start-up
    )
    metrics = handlers.IntakeMetrics(runtime.registry)
    feeds = FeedWatch(
        lambda: runtime.pool,
        clock=runtime.clock,
        source=runtime.source,
        registry=runtime.registry,
        counties=settings.counties,
        silence_after=settings.feed_silence_after,
        interval=settings.feed_check_interval,
    )
    runtime.add_worker(lambda _pool: feeds)
    # The policy of record: reports are answered with its deadlines and carry its
    # digest, so the audit's cross-check can re-derive every duty from the trail.
    announce_policy(runtime, ctx.policy, by="intake")
    stream.register(runtime, ctx, metrics, feeds, sources=settings.kafka_sources)
    app = FastAPI(
        title="missing-from-care intake",
        version="1",
        description="County-facing API: report children missing from care and what follows.",
        lifespan=runtime.lifespan,
    )
    app.include_router(http.create_router(runtime, ctx, metrics, feeds))
    add_ops_routes(app, runtime, refine_invalid=http.refine_invalid(ctx, metrics))
    return app
