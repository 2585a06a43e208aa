"""Notifier's composition root."""

from fastapi import FastAPI

from notifier.config import NotifierSettings
from notifier.entrypoints import stream
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: NotifierSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime("notifier", settings, clock or SystemClock())
    stream.register(runtime)
    app = FastAPI(
        title="missing-from-care notifier", version="1", lifespan=runtime.lifespan
    )
    add_ops_routes(app, runtime)
    return app
