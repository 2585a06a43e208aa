"""Run a service's ASGI app the same way for every service: JSON logs, uvicorn,
graceful shutdown on SIGTERM/SIGINT (uvicorn runs the lifespan's stop)."""

from typing import Protocol

import uvicorn
from fastapi import FastAPI

from shared.logs import configure_logging


class HttpSettings(Protocol):
    @property
    def http_host(self) -> str: ...
    @property
    def http_port(self) -> int: ...
    @property
    def log_level(self) -> str: ...


def serve(service: str, settings: HttpSettings, app: FastAPI) -> None:
    configure_logging(service, settings.log_level)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep our JSON handler
        access_log=False,
        timeout_graceful_shutdown=10,
    )
