"""Real local receivers for alert deliveries: an HTTP server for webhooks and an
SMTP server (aiosmtpd), both on 127.0.0.1."""

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.devstack import free_port

# What docs/notifier.md shows a receiver doing ("Verifying a webhook"): keep these
# lines and the page's in step.
REPLAY_WINDOW = 600  # seconds; longer than standardwebhooks' 5-minute tolerance


def verify_alert(
    body: bytes, headers: Mapping[str, str], secret: str, seen: dict[str, float]
) -> dict[str, Any] | None:
    """The alert, or None if this webhook-id was taken already (a replay, or our
    resend after a crash); raises WebhookVerificationError if forged or stale."""
    alert = Webhook(secret).verify(body, dict(headers))  # signature, time +-5 min
    now = time.time()
    for old_id, taken_at in list(seen.items()):
        if taken_at < now - REPLAY_WINDOW:
            del seen[old_id]  # a replay this old fails on its timestamp anyway
    webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    if webhook_id in seen:
        return None
    seen[webhook_id] = now
    return dict(alert)


@dataclass
class WebhookReceiver:
    url: str
    secrets: Sequence[str] = ()
    """Verify each POST as docs/notifier.md shows (any one secret suffices, as for
    a receiver that knows only the old or only the new one during a rotation);
    none: take every POST unchecked."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    taken: list[dict[str, Any]] = field(default_factory=list)
    """Alerts that verified and were not replays."""
    refused: list[str] = field(default_factory=list)
    """Why POSTs failed verification."""
    seen: dict[str, float] = field(default_factory=dict)
    heartbeats: int = 0
    fail_next: int = 0
    """Answer 500 to this many requests first (to test retries)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["json"] for r in self.requests if r["status"] == 200]

    def delivered(self) -> list[dict[str, Any]]:
        """Payloads as a receiver that honours the ``X-MFC-Delivery`` idempotency
        key sees them: a resend of one delivery counts once."""
        seen: set[str] = set()
        unique = []
        with self.lock:
            for r in self.requests:
                key = r["headers"].get("X-MFC-Delivery")
                assert key, "every webhook delivery carries X-MFC-Delivery"
                if r["status"] == 200 and key not in seen:
                    seen.add(key)
                    unique.append(r["json"])
        return unique


@contextmanager
def webhook_receiver(secrets: Sequence[str] = ()) -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/alerts", secrets=secrets)

    def check(body: bytes, headers: Mapping[str, str]) -> int:
        """The status a verifying receiver answers (under the lock)."""
        if not receiver.secrets:
            return 200
        problems = []
        for secret in receiver.secrets:
            try:
                alert = verify_alert(body, headers, secret, receiver.seen)
            except WebhookVerificationError as exc:
                problems.append(str(exc))
                continue
            if alert is not None:
                receiver.taken.append(alert)
            return 200  # a replay is answered 200 too: taken once, never retried
        receiver.refused.extend(problems)
        return 400

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers allow

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                status = 500 if receiver.fail_next > 0 else 200
                receiver.fail_next = max(receiver.fail_next - 1, 0)
                if status == 200:
                    status = check(body, dict(self.headers))
                receiver.requests.append(
                    {
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body),
                        "status": status,
                        "received_at": time.monotonic(),
                        "client": self.client_address,  # (host, port): a connection
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with receiver.lock:
                receiver.heartbeats += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # A delivery worker sends a batch of up to 50 at once; the default listen
        # backlog of 5 overflows and the kernel resets connections, which a
        # retry test would then see instead of the 500s the receiver chose.
        request_queue_size = 256
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpReceiver:
    port: int
    messages: list[Any] = field(default_factory=list)


class _Collect:
    def __init__(self, sink: SmtpReceiver) -> None:
        self.sink = sink

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.sink.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(port=free_port())
    controller = Controller(
        _Collect(receiver), hostname="127.0.0.1", port=receiver.port
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
