"""A county feed that goes quiet is noticed: through the real intake, over HTTP and
Kafka, with the e2e stack's 3-second allowance for QUIET_COUNTY."""

import time
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from shared import topics
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.e2e.conftest import QUIET_COUNTY, QUIET_FOR
from tests.e2e.test_intake import dead_letter_reason, now, send


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
