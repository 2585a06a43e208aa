"""Followup's composition root."""

from fastapi import FastAPI

from followup.config import FollowupSettings
from followup.entrypoints import stream
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def create_app(settings: FollowupSettings, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime("followup", settings, clock or SystemClock())
    stream.register(runtime)
    app = FastAPI(
        title="missing-from-care followup", version="1", lifespan=runtime.lifespan
    )
    add_ops_routes(app, runtime)
    return app
