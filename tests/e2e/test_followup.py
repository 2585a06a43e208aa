"""Followup end to end with a policy in seconds: the cadence of recurring prompts,
completion, overdue escalation, located and closed ending series, one-offs on new
information and on return, and a SIGKILL that loses and duplicates nothing."""

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import api
from tests.e2e.fast import SECRET, FastService, report_now
from tests.e2e.test_walking_skeleton import audit_entries, eventually
from tests.receivers import smtp_receiver, webhook_receiver


@pytest.fixture
def fast(stack, tmp_path) -> Iterator[FastService]:
    # Followup's prompts are signed as the notifier's alerts are: verified here.
    with webhook_receiver([SECRET]) as webhook, smtp_receiver() as smtp:
        service = FastService("followup", stack, webhook, smtp, tmp_path)
        service.add_replica()
        try:
            yield service
        finally:
            service.stop()


def prompts(
    fast: FastService, episode_id: str, kind: str | None = None, **params: str
) -> list[dict[str, Any]]:
    answer = api.get(
        f"{fast.url}/v1/prompts", params={"episode_id": episode_id, **params}, timeout=5
    )
    assert answer.status_code == 200
    return [p for p in answer.json() if kind is None or p["rule_id"] == kind]


def post_event(stack, episode_id: str, path: str, body: dict[str, Any]) -> None:
    answer = api.post(
        f"{stack.url('intake')}/v1/episodes/{episode_id}/{path}", json=body, timeout=10
    )
    assert answer.status_code == 201, answer.text


def now() -> str:
    return datetime.now(UTC).isoformat()


def test_recurring_prompts_keep_their_cadence_complete_and_escalate(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(20):
        with attempt:
            search = prompts(fast, episode_id, "document_search_efforts")
            assert len(search) >= 3
    issued = [datetime.fromisoformat(p["issued_at"]) for p in search]
    assert [p["occurrence"] for p in search] == list(range(len(search)))
    assert {b - a for a, b in itertools.pairwise(issued)} == {timedelta(seconds=2)}

    # Completing one occurrence does not stop the series; the next comes on schedule.
    latest = search[-1]
    done = api.post(
        f"{fast.url}/v1/prompts/{latest['id']}/complete",
        json={"note": "called shelters"},
        timeout=5,
    )
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    assert done.json()["completed_by"] == "test-user", "the token's subject"
    named = api.post(
        f"{fast.url}/v1/prompts/{latest['id']}/complete",
        json={"completed_by": "someone-else"},
        timeout=5,
    )
    assert named.status_code == 422
    assert named.json()["detail"][0]["loc"] == ["body", "completed_by"]
    again = api.post(
        f"{fast.url}/v1/prompts/{latest['id']}/complete",
        json={},
        timeout=5,
    )
    assert again.status_code == 409
    for attempt in eventually(10):
        with attempt:
            assert len(prompts(fast, episode_id, "document_search_efforts")) > len(
                search
            )

    # Occurrences nobody completed went overdue and escalated to the supervisor.
    overdue = prompts(fast, episode_id, "document_search_efforts", status="overdue")
    assert overdue
    assert latest["id"] not in {p["id"] for p in overdue}
    for attempt in eventually(10):
        with attempt:
            escalations = [
                p
                for p in fast.webhook.payloads()
                if p["episode_id"] == episode_id and p["reason"] == "overdue"
            ]
            assert escalations
            assert escalations[0]["recipients"] == [
                {"id": "sv-1", "name": "Sam Supervisor"}
            ]
            assert any(m["To"] == "sv@example.org" for m in fast.smtp.messages)
    assert all("Testchild" not in str(p) for p in fast.webhook.payloads())
    assert fast.webhook.refused == []  # every prompt verified (Standard Webhooks)


def test_updates_located_and_closed_start_and_end_series(stack, fast):
    episode_id = report_now(stack)[
        "id"
    ]  # misses one item: sex-trafficking vulnerability
    for attempt in eventually(15):
        with attempt:
            assert prompts(fast, episode_id, "provide_missing_report_items")
    post_event(
        stack,
        episode_id,
        "updates",
        {"endangerments": {"sex_trafficking_vulnerability": False}},
    )
    for attempt in eventually(15):
        with attempt:
            assert prompts(fast, episode_id, "share_new_information")
            missing = prompts(fast, episode_id, "provide_missing_report_items")
            assert all(p["status"] == "ended" for p in missing)
    settled = len(prompts(fast, episode_id, "provide_missing_report_items"))

    post_event(
        stack,
        episode_id,
        "located",
        {"located_at": now(), "location_type": "friend's home"},
    )
    for attempt in eventually(15):
        with attempt:
            kinds = {p["rule_id"] for p in prompts(fast, episode_id, status="open")}
            assert {"trafficking_screening", "return_debrief"} <= kinds
            assert "document_search_efforts" not in kinds
    search_count = len(prompts(fast, episode_id, "document_search_efforts"))
    assert len(prompts(fast, episode_id, "provide_missing_report_items")) == settled

    post_event(
        stack,
        episode_id,
        "screening",
        {"completed_at": now(), "trafficking_indicated": False, "screened_by": "cw-1"},
    )
    for attempt in eventually(15):
        with attempt:
            [screening] = prompts(fast, episode_id, "trafficking_screening")
            assert screening["status"] == "completed"
            assert screening["completed_by"].startswith("event:")

    post_event(
        stack,
        episode_id,
        "close",
        {"closed_at": now(), "reason": "home, debriefed", "closed_by": "sv-1"},
    )
    for attempt in eventually(15):
        with attempt:
            [debrief] = prompts(fast, episode_id, "return_debrief")
            assert debrief["status"] == "ended"
            assert "episode closed" in debrief["ended_reason"]

    time.sleep(3)  # longer than the search cadence: nothing new may appear
    assert len(prompts(fast, episode_id, "document_search_efforts")) == search_count
    for attempt in eventually(20):
        with attempt:
            types = {
                e["type"]
                for e in audit_entries(stack, episode_id=episode_id, limit=1000)
            }
            assert {
                "mfc.prompt.issued",
                "mfc.prompt.completed",
                "mfc.prompt.ended",
            } <= types


def test_a_followup_killed_mid_cadence_loses_and_duplicates_no_occurrence(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(15):
        with attempt:
            assert len(prompts(fast, episode_id, "document_search_efforts")) >= 1
    fast.replicas[0].kill()

    time.sleep(5)
    fast.restart_after_kill()
    for attempt in eventually(30):
        with attempt:
            search = prompts(fast, episode_id, "document_search_efforts")
            assert len(search) >= 5
    assert [p["occurrence"] for p in search] == list(range(len(search)))
    issued = [datetime.fromisoformat(p["issued_at"]) for p in search]
    assert {b - a for a, b in itertools.pairwise(issued)} == {timedelta(seconds=2)}
    issued_events = [
        e["event"]["data"]["prompt_id"]
        for e in audit_entries(
            stack, episode_id=episode_id, type="mfc.prompt.issued", limit=1000
        )
    ]
    assert len(issued_events) == len(set(issued_events))


def test_missing_items_are_named_repeated_until_given_and_prompted_again(stack, fast):
    episode_id = report_now(stack)["id"]  # sex-trafficking vulnerability unknown
    item = "endangerments.sex_trafficking_vulnerability"
    for attempt in eventually(15):
        with attempt:
            missing = prompts(fast, episode_id, "provide_missing_report_items")
            assert len(missing) >= 2  # repeated while the item is missing
    assert all(p["missing_items"] == [item] for p in missing)
    for attempt in eventually(10):
        with attempt:
            texts = [
                p["text"]
                for p in fast.webhook.payloads()
                if p["episode_id"] == episode_id
                and p["prompt"]["kind"] == "provide_missing_report_items"
            ]
            assert any(f"Still missing: {item}" in t for t in texts)

    post_event(
        stack, episode_id, "updates", {"endangerments": {item.split(".")[1]: True}}
    )
    for attempt in eventually(15):
        with attempt:
            given = prompts(fast, episode_id, "provide_missing_report_items")
            assert all(p["status"] == "ended" for p in given)
    time.sleep(3)  # longer than the cadence: no new occurrence while nothing is missing
    assert len(prompts(fast, episode_id, "provide_missing_report_items")) == len(given)

    # The item is unknown again: the prompts start again.
    post_event(
        stack, episode_id, "updates", {"endangerments": {item.split(".")[1]: "unknown"}}
    )
    for attempt in eventually(15):
        with attempt:
            again = prompts(
                fast, episode_id, "provide_missing_report_items", status="open"
            )
            assert again
            assert again[0]["missing_items"] == [item]


def test_prompts_arrive_at_their_cadence_and_are_measured(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(15):
        with attempt:
            assert prompts(fast, episode_id, "document_search_efforts")

    def arrivals() -> list[float]:
        with fast.webhook.lock:
            return [
                r["received_at"]
                for r in fast.webhook.requests
                if r["json"].get("episode_id") == episode_id
                and r["json"].get("reason") == "prompt"
                and r["json"]["prompt"]["kind"] == "document_search_efforts"
            ]

    # Count real arrivals over a real window: every 2 s makes 4 in 8 s (one may
    # straddle either edge).
    start = time.monotonic()
    time.sleep(8)
    end = time.monotonic()
    in_window = [t for t in arrivals() if start <= t < end]
    assert 3 <= len(in_window) <= 5, in_window

    for attempt in eventually(15):
        with attempt:
            metrics = api.get(f"{fast.url}/metrics", timeout=5).text
            open_now = _gauge(metrics, "mfc_prompts_open", "document_search_efforts")
            overdue_now = _gauge(
                metrics, "mfc_prompts_overdue_open", "document_search_efforts"
            )
            assert open_now >= 2
            assert overdue_now >= 1  # nobody completes them: they go overdue
            assert 'mfc_prompts_issued_total{kind="document_search_efforts"}' in metrics
    for attempt in eventually(20):
        with attempt:
            overdue_events = audit_entries(
                stack, episode_id=episode_id, type="mfc.prompt.overdue", limit=1000
            )
            assert overdue_events
    assert overdue_events[0]["event"]["data"]["escalated_to"] == "supervisor"


def _gauge(metrics: str, name: str, kind: str) -> float:
    prefix = f'{name}{{kind="{kind}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def test_two_replicas_issue_and_escalate_each_occurrence_once(stack, fast):
    fast.add_replica()
    episodes = [report_now(stack)["id"] for _ in range(4)]
    for attempt in eventually(40):
        with attempt:
            for episode_id in episodes:
                search = prompts(fast, episode_id, "document_search_efforts")
                assert len(search) >= 4
                overdue = [
                    p
                    for p in fast.webhook.delivered()
                    if p["episode_id"] == episode_id and p["reason"] == "overdue"
                ]
                assert len(overdue) >= 2
    for episode_id in episodes:
        search = prompts(fast, episode_id, "document_search_efforts")
        assert [p["occurrence"] for p in search] == list(range(len(search)))
        issued = [datetime.fromisoformat(p["issued_at"]) for p in search]
        assert {b - a for a, b in itertools.pairwise(issued)} == {timedelta(seconds=2)}
        escalated = [
            p["prompt"]["id"]
            for p in fast.webhook.delivered()
            if p["episode_id"] == episode_id and p["reason"] == "overdue"
        ]
        assert len(escalated) == len(set(escalated)), escalated
    for episode_id in episodes:
        issued_events = [
            e["event"]["data"]["prompt_id"]
            for e in audit_entries(
                stack, episode_id=episode_id, type="mfc.prompt.issued", limit=1000
            )
        ]
        assert len(issued_events) == len(set(issued_events))
    # Both replicas fired timers (the work was shared, not left to one).
    for replica in fast.replicas:
        metrics = api.get(f"{replica.url}/metrics", timeout=5).text
        fired = [
            sample.value
            for family in text_string_to_metric_families(metrics)
            if family.name == "mfc_timers_fired"
            for sample in family.samples
            if sample.name == "mfc_timers_fired_total"
        ]
        assert sum(fired) > 0, replica.url
