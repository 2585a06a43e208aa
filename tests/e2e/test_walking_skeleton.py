"""A county report travels through the real parts: intake's API, the outbox, Kafka,
and the audit trail that auditors query. Runs on both infrastructure backends."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from shared import topics
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.kafka_helpers import produce


def eventually(timeout: float = 30) -> Retrying:
    return Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.2),
        retry=retry_if_exception_type(AssertionError),
        reraise=True,
    )


def audit_entries(stack, **query) -> list[dict]:
    answer = api.get(f"{stack.url('audit')}/v1/audit/entries", params=query, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["entries"]


def episode_events(stack, episode_id: str) -> list[dict]:
    """The audit entries of an episode's canonical events (intake's, not the
    obligations and alerts other services add)."""
    return [
        e
        for e in audit_entries(stack, episode_id=episode_id)
        if e["topic"] == topics.EPISODES
    ]


def test_a_report_reaches_the_audit_trail(stack):
    report = make_report()
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    assert answer.status_code == 201, answer.text
    episode = answer.json()
    assert episode["status"] == "missing"
    assert answer.headers["location"] == f"/v1/episodes/{episode['id']}"

    for attempt in eventually():
        with attempt:
            entries = episode_events(stack, episode["id"])
            assert [e["type"] for e in entries] == [EventType.EPISODE_REPORTED]
    [entry] = entries
    assert entry["source"] == "service/intake"
    assert entry["county_code"] == "NC-063"
    assert entry["topic"] == topics.EPISODES
    assert entry["event"]["data"]["case_id"] == report["case_id"]
    assert entry["event"]["data"]["episode_id"] == episode["id"]


def test_the_same_report_twice_gives_one_episode_and_one_event(stack):
    report = make_report()
    first = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    second = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    for attempt in eventually():
        with attempt:
            assert len(episode_events(stack, first.json()["id"])) == 1

    conflicting = api.post(
        f"{stack.url('intake')}/v1/episodes",
        json={**report, "prior_episodes": 3},
        timeout=10,
    )
    assert conflicting.status_code == 409
    assert conflicting.json()["episode_id"] == first.json()["id"]


def test_an_invalid_report_is_refused_naming_each_field(stack):
    report = make_report(county_code="MO-510")
    report["child"]["sex"] = "robot"
    del report["caseworker"]
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    assert answer.status_code == 422
    locations = {tuple(d["loc"]) for d in answer.json()["detail"]}
    assert ("body", "child", "sex") in locations
    assert ("body", "caseworker") in locations

    learned = datetime.fromisoformat(make_report()["agency_learned_at"])
    out_of_order = make_report(
        discovered_at=(learned - timedelta(hours=1)).isoformat(),
        last_seen_at=learned.isoformat(),
    )
    answer = api.post(
        f"{stack.url('intake')}/v1/episodes", json=out_of_order, timeout=10
    )
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", "discovered_at"]]


def test_a_report_published_on_the_inbound_topic_opens_an_episode(stack):
    report = make_report()
    inbound = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=report["case_id"],
        data=report,
        time=datetime.now(UTC),
    )
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topics.INBOUND,
            (report["case_id"].encode(), inbound.to_bytes()),
            (
                report["case_id"].encode(),
                inbound.to_bytes(),
            ),  # at-least-once: a redelivery
        )
    )
    for attempt in eventually():
        with attempt:
            reported = [
                e
                for e in audit_entries(
                    stack, type=EventType.EPISODE_REPORTED, county="NC-063", limit=1000
                )
                # .get: the county's entries include its episodes' county-less
                # ones, e.g. an inbound event that named the episode by subject.
                if e["event"]["data"].get("case_id") == report["case_id"]
                and e["topic"] == topics.EPISODES
            ]
            assert len(reported) == 1
    episode_id = reported[0]["episode_id"]
    answer = api.get(f"{stack.url('intake')}/v1/episodes/{episode_id}", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["case_id"] == report["case_id"]
    assert [t["type"] for t in answer.json()["timeline"]] == [
        EventType.EPISODE_REPORTED
    ]


def test_an_inbound_message_that_cannot_be_parsed_is_dead_lettered_once(stack):
    """Intake, which owns the topic, dead-letters it; the audit service records that
    dead letter and no second one of its own, so the trail tells of the message
    once. The original bytes (which may hold a whole report) are redacted in the
    auditors' view."""
    since = {"from": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}
    left_before = left_to_intake(stack)
    garbage = f'{{"broken": "{uuid4()}"'.encode()
    report = make_report()
    key = report["case_id"]
    after = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=None,
        data=report,
        time=datetime.now(UTC),
    )
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topics.INBOUND,
            (key.encode(), garbage),
            (key.encode(), after.to_bytes()),
        )
    )
    for attempt in eventually():
        with attempt:
            reports = audit_entries(
                stack, type=EventType.EPISODE_REPORTED, limit=1000, **since
            )
            # The audit service reads the partition in order: once the report
            # sent after the garbage is in the trail, it has passed the garbage.
            assert after.id in [e["event"]["id"] for e in reports]
            letters = [
                e["event"]["data"]
                for e in audit_entries(
                    stack, type=EventType.DEADLETTER_RECORDED, limit=1000, **since
                )
                if e["event"]["data"]["original_key"] == key
            ]
            assert len(letters) >= 1
    [letter] = letters
    assert letter["consumer"] == "intake-inbound"
    assert letter["original_topic"] == topics.INBOUND
    assert "not a JSON document" in letter["reason"]
    assert letter["original_base64"] == "[redacted]"
    assert left_to_intake(stack) == left_before + 1


def left_to_intake(stack) -> float:
    """How many unreadable messages the audit service has left to their owner."""
    metrics = api.get(f"{stack.url('audit')}/metrics", timeout=5).text
    line = 'mfc_messages_total{consumer="audit-log",outcome="left_to_owner"}'
    found = [m.split()[-1] for m in metrics.splitlines() if m.startswith(line)]
    return float(found[0]) if found else 0.0


def test_every_service_is_alive_ready_and_measured(stack):
    for name in ("intake", "notifier", "followup", "audit"):
        base = stack.url(name)
        assert api.get(f"{base}/healthz", timeout=5).json()["service"] == name
        assert api.get(f"{base}/readyz", timeout=5).status_code == 200
        metrics = api.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "mfc_outbox_published_total" in metrics.text


def test_audit_pages_are_stable_with_a_cursor(stack):
    """Keyset pages of two while the services keep appending (obligations and
    alerts of these reports) skip and repeat nothing. Scoped to the entries since
    the test began: paging the whole shared log cost minutes once earlier tests
    had filled it."""
    since = {"from": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    for _ in range(3):
        api.post(f"{stack.url('intake')}/v1/episodes", json=make_report(), timeout=10)
    for attempt in eventually():
        with attempt:
            everything = audit_entries(stack, limit=1000, **since)
            assert len(everything) >= 3
    seen, cursor = [], None
    while True:
        page = api.get(
            f"{stack.url('audit')}/v1/audit/entries",
            params={"limit": 2, **since, **({"cursor": cursor} if cursor else {})},
            timeout=10,
        ).json()
        seen.extend(e["seq"] for e in page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[: len(everything)] == [e["seq"] for e in everything]
    assert seen == sorted(set(seen))
