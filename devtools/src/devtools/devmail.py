"""A development mail catcher: an SMTP server that keeps every message it is given
in memory, and a small web inbox to read them (and click the links in alert emails).

Nothing it receives is relayed anywhere. It is for ``make run`` and tests on one
machine, not for production: the inbox has no login, so keep it on 127.0.0.1.

- ``/``: the messages, newest first (received, from, to, subject).
- ``/messages/<id>``: one message, its headers and its plain-text body, with every
  http:// and https:// URL made a link.
- ``/api/messages``: the messages as JSON, newest first:
  ``[{id, received_at, from, to: [...], subject, text}]``; ``DELETE`` (or
  ``POST /api/messages/clear``) empties the inbox. ``/api/messages/<id>``: one.

``from`` is the message's From header (the envelope sender when it has none); ``to``
is the envelope recipients, the addresses the message was actually delivered to.
"""

import base64
import hashlib
import html
import itertools
import json
import logging
import re
import socket
import threading
import urllib.request
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)

DEV_NOTICE = "Development mail catcher: nothing here leaves this machine."

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class CaughtMessage:
    """One message as the catcher keeps it."""

    id: int
    received_at: datetime
    sender: str
    """The From header, or the envelope sender if the message has none."""
    recipients: tuple[str, ...]
    """The envelope recipients (RCPT TO)."""
    subject: str
    text: str
    """The text/plain part, or the text of the text/html part if that is all."""
    headers: tuple[tuple[str, str], ...]
    envelope_from: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "from": self.sender,
            "to": list(self.recipients),
            "subject": self.subject,
            "text": self.text,
        }


class _HtmlText(HTMLParser):
    """The readable text of an HTML body; a link's target follows its text."""

    _BLOCKS = frozenset(
        {
            "address", "article", "blockquote", "br", "dd", "div", "dl", "dt",
            "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
            "ol", "p", "pre", "section", "table", "tr", "ul",
        }
    )  # fmt: skip
    _SKIPPED = frozenset({"head", "script", "style", "template", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0
        self._hrefs: list[str | None] = []
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self._parts.append("\n")
        if tag == "a":
            self._hrefs.append(dict(attrs).get("href"))
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
        elif tag in self._BLOCKS:
            self._parts.append("\n")
        if tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if href and _URL.fullmatch(href) and href not in "".join(self._link_text):
                self._parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(data)
            self._link_text.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()


def _content(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
    except (LookupError, ValueError, KeyError):
        pass  # an unknown charset or a broken encoding: decode it leniently below
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def body_text(message: Message) -> str:
    """The text/plain part, else the text of the text/html part, else ''."""
    if isinstance(message, EmailMessage):
        plain = message.get_body(preferencelist=("plain",))
        if plain is not None:
            return _content(plain)
        rich = message.get_body(preferencelist=("html",))
        if rich is not None:
            return html_to_text(_content(rich))
    if not message.is_multipart() and message.get_content_maintype() == "text":
        text = _content(message)
        return html_to_text(text) if message.get_content_subtype() == "html" else text
    return ""


def _headers(message: Message) -> list[tuple[str, str]]:
    """Every header, decoded; as sent where decoding fails."""
    headers = []
    for name, raw in message.raw_items():
        try:
            value = str(message.policy.header_fetch_parse(name, raw))
        except Exception:  # a header the parser cannot make sense of
            value = " ".join(str(raw).split())
        headers.append((name, value))
    return headers


def _first(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for n, v in headers if n.lower() == name.lower()), "")


def parse_message(
    raw: bytes,
    *,
    message_id: int,
    received_at: datetime,
    envelope_from: str,
    recipients: tuple[str, ...],
) -> CaughtMessage:
    """A received message as the catcher keeps it; never raises for bad mail."""
    message = message_from_bytes(raw, policy=default_policy)
    headers = _headers(message)
    try:
        text = body_text(message)
    except Exception:  # whatever it is, the inbox still shows the message
        logger.exception("could not read the body of caught message %s", message_id)
        text = raw.decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CaughtMessage(
        id=message_id,
        received_at=received_at,
        sender=_first(headers, "From") or envelope_from,
        recipients=recipients,
        subject=_first(headers, "Subject"),
        text=text,
        headers=tuple(headers),
        envelope_from=envelope_from,
    )


# -- HTML ---------------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*_"
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _url_end(url: str) -> str:
    """The URL without punctuation that ends the sentence around it, and without
    a closing bracket that it does not open (``(see http://x/y)``)."""
    while url:
        last = url[-1]
        unopened = last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])
        if last not in _TRAILING and not unopened:
            break
        url = url[:-1]
    return url


def linkify(text: str) -> str:
    """``text`` as HTML: escaped, with every http(s) URL a link to itself."""
    out: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = _url_end(match.group())
        if len(url) <= len(match.group().split("://", 1)[0]) + 3:
            continue  # "http://" and nothing after it
        out.append(html.escape(text[position : match.start()]))
        quoted = html.escape(url)
        out.append(f'<a href="{quoted}" rel="noreferrer">{quoted}</a>')
        position = match.start() + len(url)
    out.append(html.escape(text[position:]))
    return "".join(out)


_CSS = """
:root { color: #1b1b1b; background: #fff; font: 100%/1.5 system-ui, -apple-system,
  "Segoe UI", Roboto, sans-serif; }
body { margin: 0; }
.notice { margin: 0; padding: .5rem 1rem; background: #fff4d6; color: #3d2e00;
  border-bottom: 1px solid #b38600; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: .5rem 0 1rem;
  overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
a { color: #0b57d0; }
a:visited { color: #6b2ab8; }
a:focus-visible, button:focus-visible { outline: 3px solid #1b1b1b;
  outline-offset: 2px; }
ol.messages { list-style: none; margin: 0; padding: 0; }
ol.messages > li { border-top: 1px solid #8a8a8a; padding: .75rem 0; }
ol.messages > li:last-child { border-bottom: 1px solid #8a8a8a; }
.subject { margin: 0 0 .25rem; font-size: 1.1rem; font-weight: 600;
  overflow-wrap: anywhere; }
dl.fields { margin: 0; display: grid; grid-template-columns: max-content 1fr;
  gap: .125rem .75rem; }
dl.fields div { display: contents; }
dl.fields dt { color: #4a4a4a; }
dl.fields dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4;
  border: 1px solid #8a8a8a; padding: .75rem; font-size: .95rem; line-height: 1.45;
  margin: 0; }
button { font: inherit; padding: .4rem .9rem; min-height: 2.75rem; color: #fff;
  background: #a11b1b; border: 0; border-radius: .25rem; cursor: pointer; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem 1.5rem; align-items: center;
  margin: 0 0 1rem; }
.actions form { margin: 0; }
details { margin-top: 1rem; }
summary { cursor: pointer; }
@media (max-width: 20rem) {
  dl.fields { grid-template-columns: 1fr; }
  dl.fields dd { margin-bottom: .375rem; }
}
""".strip()

_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} - development mail</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><p class="notice">{html.escape(DEV_NOTICE)}</p></header>\n'
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _time(moment: datetime) -> str:
    return f'<time datetime="{moment.isoformat()}">{_utc(moment)}</time>'


def _fields(rows: list[tuple[str, str]]) -> str:
    """A definition list; values are HTML already."""
    items = "".join(
        f"<div><dt>{html.escape(name)}</dt><dd>{value}</dd></div>"
        for name, value in rows
    )
    return f'<dl class="fields">{items}</dl>'


def _subject(message: CaughtMessage) -> str:
    return message.subject.strip() or "(no subject)"


def inbox_page(messages: list[CaughtMessage], *, smtp_address: str) -> str:
    count = len(messages)
    body = [
        "<h1>Inbox</h1>",
        f"<p>Mail sent over SMTP to {html.escape(smtp_address)} lands here. "
        f"{count} message{'' if count == 1 else 's'}, newest first; "
        "reload the page to see new ones.</p>",
    ]
    if messages:
        body.append(
            '<div class="actions"><form method="post" action="/clear">'
            '<button type="submit">Delete all messages</button></form></div>'
        )
        items = []
        for message in messages:
            link = (
                f'<p class="subject"><a href="/messages/{message.id}">'
                f"{html.escape(_subject(message))}</a></p>"
            )
            fields = _fields(
                [
                    ("Received", _time(message.received_at)),
                    ("From", html.escape(message.sender)),
                    ("To", html.escape(", ".join(message.recipients))),
                ]
            )
            items.append(f"<li>{link}{fields}</li>")
        body.append(
            '<ol class="messages" aria-label="Messages">' + "".join(items) + "</ol>"
        )
    else:
        body.append("<p>No messages yet.</p>")
    return _page("Inbox", "\n".join(body))


def message_page(message: CaughtMessage) -> str:
    subject = _subject(message)
    fields = _fields(
        [
            ("Received", _time(message.received_at)),
            ("From", html.escape(message.sender)),
            ("To", html.escape(", ".join(message.recipients))),
            ("Subject", html.escape(subject)),
            *(
                (name, html.escape(value))
                for name, value in message.headers
                if name.lower() in ("date", "message-id", "cc", "reply-to")
            ),
        ]
    )
    all_headers = "\n".join(f"{name}: {value}" for name, value in message.headers)
    body = "\n".join(
        [
            '<p><a href="/">Back to the inbox</a></p>',
            f"<h1>{html.escape(subject)}</h1>",
            fields,
            "<details><summary>All headers</summary>"
            f"<pre>{html.escape(all_headers)}</pre></details>",
            "<h2>Message text</h2>",
            f"<pre>{linkify(message.text) or '(no text)'}</pre>",
        ]
    )
    return _page(subject, body)


def not_found_page() -> str:
    body = (
        "<h1>Not found</h1>\n"
        "<p>There is no such page or message here; messages are kept in memory only, "
        "so a restart or a clear empties the inbox.</p>\n"
        '<p><a href="/">Back to the inbox</a></p>'
    )
    return _page("Not found", body)


# -- the servers --------------------------------------------------------------------


class _Store:
    def __init__(self, keep: int) -> None:
        self._lock = threading.Lock()
        self._messages: deque[CaughtMessage] = deque(maxlen=keep)
        self._ids = itertools.count(1)

    def add(
        self, raw: bytes, *, envelope_from: str, recipients: tuple[str, ...]
    ) -> CaughtMessage:
        message = parse_message(
            raw,
            message_id=0,
            received_at=datetime.now(UTC),
            envelope_from=envelope_from,
            recipients=recipients,
        )
        with self._lock:
            message = replace(message, id=next(self._ids))
            self._messages.appendleft(message)
        return message

    def all(self) -> list[CaughtMessage]:
        with self._lock:
            return list(self._messages)

    def get(self, id_: int) -> CaughtMessage | None:
        with self._lock:
            return next((m for m in self._messages if m.id == id_), None)

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            return count


class _Handler:
    """aiosmtpd handler: accept every recipient and every message."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = self._store.add(
            raw,
            envelope_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
        )
        logger.info(
            "caught mail %s to %s: %s",
            message.id,
            ", ".join(message.recipients),
            message.subject,
        )
        return "250 Message accepted for delivery"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_class(
    store: _Store, *, smtp_address: str, allowed_hosts: frozenset[str] | None
) -> type[BaseHTTPRequestHandler]:
    class InboxHandler(BaseHTTPRequestHandler):
        server_version = "devmail"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("inbox %s %s", self.address_string(), format % args)

        def _send(
            self,
            status: HTTPStatus,
            body: bytes,
            content_type: str,
            extra: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            if status != HTTPStatus.NO_CONTENT:
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
            for name, value in {**_SECURITY_HEADERS, **(extra or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _html(self, status: HTTPStatus, page: str) -> None:
            self._send(status, page.encode(), "text/html; charset=utf-8")

        def _json(self, status: HTTPStatus, data: Any) -> None:
            body = json.dumps(data, ensure_ascii=False).encode()
            self._send(status, body, "application/json")

        def _host_ok(self) -> bool:
            """Refuse other Host names: a web page elsewhere cannot read the inbox
            through a DNS name that it points at 127.0.0.1 (DNS rebinding)."""
            if allowed_hosts is None:
                return True
            host = (self.headers.get("Host") or "").lower()
            if host in allowed_hosts:
                return True
            self._send(
                HTTPStatus.MISDIRECTED_REQUEST,
                b"unknown Host\n",
                "text/plain; charset=utf-8",
            )
            return False

        def _path(self) -> str:
            return urlsplit(self.path).path.rstrip("/") or "/"

        def _not_found(self, path: str) -> None:
            if path.startswith("/api/"):
                self._json(HTTPStatus.NOT_FOUND, {"detail": "not found"})
            else:
                self._html(HTTPStatus.NOT_FOUND, not_found_page())

        def _not_allowed(self, allow: str) -> None:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                b"method not allowed\n",
                "text/plain; charset=utf-8",
                {"Allow": allow},
            )

        def _message_id(self, path: str, prefix: str) -> int | None:
            rest = path.removeprefix(prefix)
            return int(rest) if rest.isdigit() and len(rest) < 19 else None

        def do_GET(self) -> None:
            if not self._host_ok():
                return
            path = self._path()
            if path == "/":
                page = inbox_page(store.all(), smtp_address=smtp_address)
                self._html(HTTPStatus.OK, page)
            elif path == "/api/messages":
                self._json(HTTPStatus.OK, [m.to_json() for m in store.all()])
            elif path == "/favicon.ico":  # none; spare the browser console a 404
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif path in ("/clear", "/api/messages/clear"):
                self._not_allowed("POST")
            elif path.startswith("/api/messages/"):
                id_ = self._message_id(path, "/api/messages/")
                found = None if id_ is None else store.get(id_)
                if found is None:
                    self._not_found(path)
                else:
                    self._json(HTTPStatus.OK, found.to_json())
            elif path.startswith("/messages/"):
                id_ = self._message_id(path, "/messages/")
                found = None if id_ is None else store.get(id_)
                if found is None:
                    self._not_found(path)
                else:
                    self._html(HTTPStatus.OK, message_page(found))
            else:
                self._not_found(path)

        do_HEAD = do_GET  # noqa: N815

        def _drain(self) -> None:
            length = self.headers.get("Content-Length")
            if length and length.isdigit():
                self.rfile.read(min(int(length), 1 << 20))

        def do_POST(self) -> None:
            if not self._host_ok():
                return
            self._drain()
            path = self._path()
            if path == "/api/messages/clear":
                self._json(HTTPStatus.OK, {"cleared": store.clear()})
            elif path == "/clear":  # the inbox page's button
                store.clear()
                self._send(
                    HTTPStatus.SEE_OTHER,
                    b"",
                    "text/plain; charset=utf-8",
                    {"Location": "/"},
                )
            elif path == "/api/messages":
                self._not_allowed("GET, HEAD, DELETE")
            else:
                self._not_found(path)

        def do_DELETE(self) -> None:
            if not self._host_ok():
                return
            self._drain()
            path = self._path()
            if path == "/api/messages":
                self._json(HTTPStatus.OK, {"cleared": store.clear()})
            else:
                self._not_found(path)

    return InboxHandler


def _claimable_port(host: str, port: int) -> int:
    """``port`` if it can be bound now (0: a free one), else OSError at once.

    aiosmtpd's Controller only reports a taken port after its whole ready timeout.
    Not devtools.devstack's ``free_port``: the dev stack is the one to import this
    module, and that would make a circle."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
        sock.bind((host, port))
        bound: int = sock.getsockname()[1]
        return bound


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DevMailCatcher:
    """SMTP on ``host:smtp_port`` that accepts and keeps every message (the newest
    ``keep``), and the web inbox on ``host:http_port``; both in background threads.

    ``with DevMailCatcher() as catcher:`` starts and stops it. A port of 0 picks a
    free one (read it back from ``smtp_port`` / ``http_port`` after ``start()``).
    """

    def __init__(
        self,
        *,
        smtp_port: int = 1025,
        http_port: int = 8025,
        host: str = "127.0.0.1",
        keep: int = 500,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._host = host
        self._smtp_port = smtp_port
        self._http_port = http_port
        self._store = _Store(keep)
        self._controller: Controller | None = None
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    @property
    def host(self) -> str:
        return self._host

    @property
    def smtp_port(self) -> int:
        return self._smtp_port

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def url(self) -> str:
        """The inbox: ``http://host:http_port``."""
        return f"http://{_hostport(self._host, self._http_port)}"

    @property
    def running(self) -> bool:
        return self._http is not None

    def messages(self) -> list[CaughtMessage]:
        """The kept messages, newest first."""
        return self._store.all()

    def clear(self) -> int:
        """Forget every message; returns how many there were."""
        return self._store.clear()

    def start(self) -> None:
        """Start SMTP and the inbox; returns once both answer. Raises OSError if a
        port is taken (nothing is left running then)."""
        with self._lifecycle:
            if self._http is not None:
                raise RuntimeError("the mail catcher is already running")
            self._smtp_port = _claimable_port(self._host, self._smtp_port)
            controller = Controller(
                _Handler(self._store),
                hostname=self._host,
                port=self._smtp_port,
                server_hostname="localhost",  # not getfqdn(), which can be slow
                ident="missing-from-care development mail catcher",
                enable_SMTPUTF8=True,
            )
            try:
                controller.start()  # returns once the server greeted a connection
            except BaseException:
                controller.stop(no_assert=True)  # ends its thread, if one is left
                if not controller.loop.is_closed():
                    controller.loop.close()
                raise
            try:
                self._start_http()
            except BaseException:
                controller.stop()
                raise
            self._controller = controller

    def _start_http(self) -> None:
        server = _HttpServer((self._host, self._http_port), BaseHTTPRequestHandler)
        self._http_port = int(server.server_address[1])
        allowed = None
        if self._host.lower() in _LOOPBACK_HOSTS:
            allowed = frozenset(
                _hostport(name, self._http_port)
                for name in ("127.0.0.1", "localhost", "::1", self._host.lower())
            )
        server.RequestHandlerClass = _handler_class(
            self._store,
            smtp_address=_hostport(self._host, self._smtp_port),
            allowed_hosts=allowed,
        )
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="devmail-http",
            daemon=True,
        )
        thread.start()
        try:
            # No proxy from the environment: this is a request to ourselves.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{self.url}/api/messages", timeout=10):
                pass
        except BaseException:
            server.shutdown()
            server.server_close()
            thread.join(5)
            raise
        self._http, self._http_thread = server, thread

    def stop(self) -> None:
        """Stop both servers and free their ports; the messages stay readable
        through ``messages()``. Does nothing if not running."""
        with self._lifecycle:
            if self._http is not None:
                self._http.shutdown()
                self._http.server_close()
                self._http = None
            if self._http_thread is not None:
                self._http_thread.join(5)
                self._http_thread = None
            if self._controller is not None:
                self._controller.stop()
                self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = [
    "DEV_NOTICE",
    "CaughtMessage",
    "DevMailCatcher",
    "body_text",
    "html_to_text",
    "linkify",
    "parse_message",
]
