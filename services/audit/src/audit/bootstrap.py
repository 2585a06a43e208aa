"""Audit's composition root."""

from fastapi import FastAPI

from audit.config import AuditSettings
from audit.entrypoints import http, stream
from audit.handlers import AuditMetrics
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: AuditSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime("audit", settings, clock or SystemClock())
    stream.register(runtime, AuditMetrics(runtime.registry))
    app = FastAPI(
        title="missing-from-care audit", version="1", lifespan=runtime.lifespan
    )
    app.include_router(http.create_router(runtime))
    add_ops_routes(app, runtime)
    return app
