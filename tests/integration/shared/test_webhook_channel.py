"""The webhook channel against a real HTTP receiver on 127.0.0.1."""

import hashlib
import hmac

import pytest

from shared.delivery import WebhookChannel
from tests.receivers import webhook_receiver

SECRET = "test-signing-key"


async def test_webhook_sends_reuse_one_connection_and_survive_a_close():
    """A client per send built a TLS context and a connection per alert: at 100
    breaches a second the notifier fell 20 s behind (bench.escalations)."""
    channel = WebhookChannel(SECRET)
    with webhook_receiver() as receiver:
        try:
            for n in range(5):
                await channel.send(
                    delivery_id=f"d-{n}", address=receiver.url, payload={"n": n}
                )
            await channel.aclose()
            await channel.send(
                delivery_id="d-5", address=receiver.url, payload={"n": 5}
            )
        finally:
            await channel.aclose()
        requests = list(receiver.requests)
    assert [r["json"]["n"] for r in requests] == [0, 1, 2, 3, 4, 5]
    for r in requests:
        expected = hmac.new(SECRET.encode(), r["body"], hashlib.sha256).hexdigest()
        assert r["headers"]["X-MFC-Signature"] == f"sha256={expected}"
    # The five sends before the close shared one connection; after it, a new one.
    assert len({r["client"] for r in requests[:5]}) == 1
    assert requests[5]["client"] != requests[0]["client"]


async def test_a_refused_webhook_raises_with_the_status():
    channel = WebhookChannel(SECRET)
    with webhook_receiver() as receiver:
        receiver.fail_next = 1
        try:
            with pytest.raises(RuntimeError, match="500"):
                await channel.send(delivery_id="d", address=receiver.url, payload={})
        finally:
            await channel.aclose()
