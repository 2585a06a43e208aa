"""A bound on the size of what a service accepts: HTTP request bodies here, Kafka
messages in ``shared.consumer``. Without it a 50 MB report was read, parsed and
validated in full before anything refused it.

An HTTP body larger than the bound is answered 413 with the limit and the setting
that sets it, before it is read (``Content-Length``) or as soon as it passes the
bound (a chunked body). A JSON body with a NUL character in a text (``\\u0000``),
which PostgreSQL cannot store, is answered 422 naming where it is; so is a query
parameter holding one.
"""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException as FastAPIHTTPException
from starlette.exceptions import HTTPException

from shared.events import NUL_PROBLEM, nul_path, shown

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(HTTPException):
    """Raised while the app reads the body: FastAPI answers it as it stands."""


class _NulText(FastAPIHTTPException):
    """A NUL in a text of the body: answered 422 as the app's validation would."""


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
        query = scope.get("query_string") or b""
        if b"%00" in query and (name := _nul_parameter(query)) is not None:
            problem = {
                "loc": ["query", name],
                "msg": NUL_PROBLEM,
                "type": "value_error",
            }
            await _answer(send, 422, {"detail": [problem]})
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._refuse(send)
            return
        seen = 0
        started = False
        chunks: list[bytes] = []

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self._max:
                    raise _TooLarge(413, too_large_detail(self._max, self._setting))
                chunks.append(chunk)
                if not message.get("more_body", False):
                    _refuse_nul(b"".join(chunks))
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
        await _answer(send, 413, {"detail": too_large_detail(self._max, self._setting)})


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _nul_parameter(query: bytes) -> str | None:
    """The query parameter whose name or value holds a NUL character, if any."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return shown(name)
    return None


def _refuse_nul(body: bytes) -> None:
    """Raise 422 if the JSON ``body`` holds a NUL in a key or a text (a cheap scan
    first: the body is parsed again only when the escape is in it)."""
    if b"\\u0000" not in body:
        return
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: the app says what is wrong with it
    where = nul_path(document)
    if where is not None:
        problem = {"loc": ["body", *where], "msg": NUL_PROBLEM, "type": "value_error"}
        raise _NulText(422, [problem])
