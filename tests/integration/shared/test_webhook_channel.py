"""The webhook channel against a real HTTP receiver on 127.0.0.1 that verifies each
POST as docs/notifier.md shows (Standard Webhooks, with a replay window)."""

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from shared.clock import ManualClock
from shared.delivery import WebhookChannel
from tests.e2e.fast import SECRET
from tests.receivers import webhook_receiver

OLD_SECRET = "whsec_YW4tb2xkZXItd2ViaG9vay1zZWNyZXQtZm9yLXRlc3Rz"
OTHER_SECRET = "whsec_c29tZWJvZHktZWxzZXMtd2ViaG9vay1zZWNyZXQ="


async def test_webhook_sends_reuse_one_connection_and_survive_a_close():
    """A client per send built a TLS context and a connection per alert: at 100
    breaches a second the notifier fell 20 s behind (bench.escalations)."""
    channel = WebhookChannel([SECRET])
    with webhook_receiver([SECRET]) as receiver:
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
    assert [a["n"] for a in receiver.taken] == [0, 1, 2, 3, 4, 5]  # all verified
    assert receiver.refused == []
    # The five sends before the close shared one connection; after it, a new one.
    assert len({r["client"] for r in requests[:5]}) == 1
    assert requests[5]["client"] != requests[0]["client"]


async def test_a_refused_webhook_raises_with_the_status():
    channel = WebhookChannel([SECRET])
    with webhook_receiver() as receiver:
        receiver.fail_next = 1
        try:
            with pytest.raises(RuntimeError, match="500"):
                await channel.send(delivery_id="d", address=receiver.url, payload={})
        finally:
            await channel.aclose()


async def replay(request: dict, **changed_headers: str) -> int:
    """POST a captured request again, as someone who recorded it would."""
    headers = {**request["headers"], **changed_headers}
    async with (
        aiohttp.ClientSession() as session,
        session.post(request["url"], data=request["body"], headers=headers) as answer,
    ):
        return answer.status


async def test_a_replayed_delivery_is_taken_once_and_a_stale_one_refused():
    channel = WebhookChannel([SECRET])
    with webhook_receiver([SECRET]) as receiver:
        try:
            await channel.send(
                delivery_id="d-1", address=receiver.url, payload={"alert": 1}
            )
            [captured] = receiver.requests
            captured["url"] = receiver.url
            # The same bytes again: they verify, but the id was taken already.
            assert await replay(captured) == 200
            assert [a["alert"] for a in receiver.taken] == [1]
            # A fresh timestamp on captured bytes: the signature no longer matches.
            later = str(int(captured["headers"]["webhook-timestamp"]) + 60)
            assert await replay(captured, **{"webhook-timestamp": later}) == 400
            assert receiver.refused == ["No matching signature found"]
            # Signed ten minutes ago (a recording replayed later, or a sender
            # whose clock is wrong): refused on its timestamp.
            stale = WebhookChannel(
                [SECRET], clock=ManualClock(datetime.now(UTC) - timedelta(minutes=10))
            )
            with pytest.raises(RuntimeError, match="400"):
                await stale.send(
                    delivery_id="d-2", address=receiver.url, payload={"alert": 2}
                )
            await stale.aclose()
        finally:
            await channel.aclose()
    assert receiver.refused[-1] == "Message timestamp too old"
    assert [a["alert"] for a in receiver.taken] == [1]


async def test_during_a_rotation_the_old_and_the_new_secret_both_verify():
    """Sending with both secrets lets each receiver move to the new one in its own
    time: one that knows only the old secret and one that knows only the new both
    take the alert; one that knows neither refuses it."""
    channel = WebhookChannel([SECRET, OLD_SECRET])
    try:
        for n, secret in enumerate([OLD_SECRET, SECRET]):
            with webhook_receiver([secret]) as receiver:
                await channel.send(
                    delivery_id=f"d-{n}", address=receiver.url, payload={"n": n}
                )
                assert [a["n"] for a in receiver.taken] == [n]
                [request] = receiver.requests
                assert len(request["headers"]["webhook-signature"].split()) == 2
        with webhook_receiver([OTHER_SECRET]) as receiver:
            with pytest.raises(RuntimeError, match="400"):
                await channel.send(delivery_id="d-x", address=receiver.url, payload={})
            assert receiver.taken == []
            assert receiver.refused == ["No matching signature found"]
    finally:
        await channel.aclose()
