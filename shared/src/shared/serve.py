"""Run a service's ASGI app the same way for every service: JSON logs, uvicorn,
graceful shutdown on SIGTERM/SIGINT (uvicorn runs the lifespan's stop)."""

import uvicorn
from fastapi import FastAPI

from shared.config import ServiceSettings
from shared.logs import configure_logging


def serve(service: str, settings: ServiceSettings, app: FastAPI) -> None:
    configure_logging(service, settings.log_level)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep our JSON handler
        access_log=False,
        timeout_graceful_shutdown=10,
    )
