"""A county feed that goes quiet is noticed, and the county's on-call is paged:
through the real intake and notifier, over HTTP and Kafka, with the e2e stack's
3-second allowance for QUIET_COUNTY."""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import topics
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.e2e.conftest import QUIET_COUNTY, QUIET_FOR
from tests.e2e.fast import SECRET, FastService
from tests.e2e.test_intake import dead_letter_reason, now, send
from tests.e2e.test_walking_skeleton import audit_entries, eventually
from tests.receivers import smtp_receiver, webhook_receiver


def feed_silent(stack, county: str = QUIET_COUNTY) -> float | None:
    text = api.get(f"{stack.url('intake')}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "mfc_feed_silent":
            for sample in family.samples:
                if sample.labels["county_code"] == county:
                    return sample.value
    return None


def until_silent_is(stack, value: float, within: float = QUIET_FOR + 10) -> float:
    """Seconds it took until mfc_feed_silent showed ``value``."""
    started = time.monotonic()
    while feed_silent(stack) != value:
        assert time.monotonic() - started < within, f"mfc_feed_silent never {value}"
        time.sleep(0.1)
    return time.monotonic() - started


def heartbeat(stack, county: str = QUIET_COUNTY, **body):
    return api.post(
        f"{stack.url('intake')}/v1/heartbeats",
        json={"county_code": county, **body},
        headers=api.bearer("county_system", counties=[QUIET_COUNTY]),
        timeout=10,
    )


def test_a_quiet_feed_turns_silent_and_any_heartbeat_revives_it(stack):
    # Nothing sends for this county: silent since watching began.
    until_silent_is(stack, 1)
    assert feed_silent(stack, "NC-063") is None  # not watched in this stack

    answer = heartbeat(stack)
    assert answer.status_code == 204, answer.text
    until_silent_is(stack, 0)
    # Quiet again for longer than allowed: silent again, not before.
    assert until_silent_is(stack, 1) >= QUIET_FOR - 1

    beat = CloudEvent.new(
        type=EventType.FEED_HEARTBEAT,
        source=f"county/{QUIET_COUNTY}",
        subject=None,
        data={"county_code": QUIET_COUNTY},
        time=now(),
    )
    send(stack, topics.INBOUND, QUIET_COUNTY, beat)
    until_silent_is(stack, 0)


def test_a_heartbeat_that_does_not_fit_is_refused_with_the_reason(stack):
    other = heartbeat(stack, "NC-063")
    assert other.status_code == 403
    assert "NC-063" in other.json()["detail"]

    misspelled = heartbeat(stack, countycode="x")
    assert misspelled.status_code == 422
    [problem] = misspelled.json()["detail"]
    assert problem["loc"] == ["body", "countycode"]
    assert "unknown field" in problem["msg"]

    unserved = api.post(
        f"{stack.url('intake')}/v1/heartbeats",
        json={"county_code": "OR-051"},
        headers=api.bearer("county_system"),
        timeout=10,
    )
    assert unserved.status_code == 422
    assert "not served" in unserved.json()["detail"][0]["msg"]

    # On Kafka: a source may beat only for its own county.
    since = {"from": (now() - timedelta(seconds=5)).isoformat()}
    forged = CloudEvent.new(
        type=EventType.FEED_HEARTBEAT,
        source="county/NC-063",
        subject=None,
        data={"county_code": QUIET_COUNTY},
        time=now(),
    )
    send(stack, topics.INBOUND, QUIET_COUNTY, forged)
    assert QUIET_COUNTY in dead_letter_reason(stack, forged.id, **since)


def test_only_the_countys_own_system_keeps_its_feed_alive(stack):
    """A person recording a notice by hand (what the silent feed's runbook asks
    for) says nothing about the county's integration: the feed stays silent."""
    report = make_report(county_code=QUIET_COUNTY)
    sent = api.post(
        f"{stack.url('intake')}/v1/episodes",
        json=report,
        headers=api.bearer("county_system", counties=[QUIET_COUNTY]),
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    until_silent_is(stack, 0)  # the county's own report counts
    until_silent_is(stack, 1)
    notice = api.post(
        f"{stack.url('intake')}/v1/episodes/{sent.json()['id']}/notifications",
        json={
            "recipient": "law_enforcement",
            "method": "phone",
            "notified_at": now().isoformat(),
            "reference_number": "LE-7",
        },
        headers=api.bearer("caseworker", counties=[QUIET_COUNTY]),
        timeout=10,
    )
    assert notice.status_code == 201, notice.text
    deadline = time.monotonic() + 2  # eight check rounds
    while time.monotonic() < deadline:
        assert feed_silent(stack) == 1
        time.sleep(0.1)


@pytest.fixture
def notifier(stack, tmp_path) -> Iterator[FastService]:
    """A notifier whose policy has the NV desk on call for NV feeds."""
    with webhook_receiver([SECRET]) as webhook, smtp_receiver() as smtp:
        service = FastService("notifier", stack, webhook, smtp, tmp_path)
        service.add_replica()
        try:
            yield service
        finally:
            service.stop()


def feed_alerts(notifier: FastService, reason: str, since: datetime) -> list[dict]:
    """The county's alerts of ``reason`` about a silence that began after ``since``
    (a new notifier also pages the silences of earlier tests, each once)."""
    at = "silent_since" if reason == "feed_resumed" else "last_event_at"
    return [
        p
        for p in notifier.webhook.payloads()
        if p.get("reason") == reason
        and p["county_code"] == QUIET_COUNTY
        and datetime.fromisoformat(p[at]) >= since
    ]


def test_a_silent_feed_pages_the_countys_on_call_once_and_the_all_clear_follows(
    stack, notifier
):
    sent = now()
    assert heartbeat(stack).status_code == 204
    for attempt in eventually(QUIET_FOR + 30):
        with attempt:
            pages = feed_alerts(notifier, "feed_silent", sent)
            assert len(pages) == 1, notifier.webhook.payloads()
    [page] = pages
    assert page["recipients"] == [{"id": "nv-feeds", "name": "Nevada feeds desk"}]
    assert "episode_id" not in page
    assert "child" not in page
    assert f"County {QUIET_COUNTY}" in page["subject"]
    assert notifier.webhook.refused == []  # signed as every alert is
    for attempt in eventually(10):
        with attempt:
            mail = [
                m
                for m in notifier.smtp.messages
                if m["To"] == "feeds@nv.example" and "FEED SILENT" in m["Subject"]
            ]
            assert mail

    # Still silent a while later: no second page for the same silence.
    time.sleep(QUIET_FOR)
    assert len(feed_alerts(notifier, "feed_silent", sent)) == 1

    assert heartbeat(stack).status_code == 204
    for attempt in eventually(15):
        with attempt:
            clears = feed_alerts(notifier, "feed_resumed", sent)
            assert len(clears) == 1, notifier.webhook.payloads()
    [clear] = clears
    assert clear["silent_since"] == page["last_event_at"]

    # Both announcements are in the trail, scoped to the county.
    announced = {
        e["type"]
        for e in audit_entries(stack, county=QUIET_COUNTY, **{"from": sent.isoformat()})
    }
    assert {"mfc.feed.silent", "mfc.feed.resumed"} <= announced
