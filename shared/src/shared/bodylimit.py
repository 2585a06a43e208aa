"""A bound on the size of what a service accepts: HTTP request bodies here, Kafka
messages in ``shared.consumer``. Without it a 50 MB report was read, parsed and
validated in full before anything refused it.

An HTTP body larger than the bound is answered 413 with the limit and the setting
that sets it, before it is read (``Content-Length``) or as soon as it passes the
bound (a chunked body).
"""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(HTTPException):
    """Raised while the app reads the body: FastAPI answers it as it stands."""


def too_large_detail(max_bytes: int, setting: str) -> str:
    return (
        f"the request body is larger than the {max_bytes:,} bytes this service "
        f"accepts; send less (a photo goes by its URL, not in the body), or ask "
        f"the operators to raise {setting}"
    )


class BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, setting: str) -> None:
        self._app = app
        self._max = max_bytes
        self._setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._max:
                    raise _TooLarge(413, too_large_detail(self._max, self._setting))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large_detail(self._max, self._setting)})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
