"""Request latency by method, route template and status, as a plain ASGI
middleware.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) runs every request
through a task group and memory streams and re-wraps the response as a stream: a
cost per request on the busiest path (intake's reports) that measuring should not
add. This one only wraps ``send`` to see the status.
"""

import time

from prometheus_client import Histogram

from shared.bodylimit import ASGIApp, Message, Receive, Scope, Send


class RequestLatency:
    """Observes ``histogram`` (labels method, route, status) for every HTTP request.
    A request the app fails without answering counts as a 500, as it is answered."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self._app = app
        self._latency = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            # The router puts the matched route in the scope it was given.
            template = getattr(scope.get("route"), "path", "unmatched")
            self._latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
