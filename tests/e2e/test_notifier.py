"""The notifier end to end with a policy in seconds: alerts, reminders, escalation
and breach reach a real HTTP receiver and a real SMTP server; recording the notice
stops them; acks snooze; a SIGKILL with timers pending and two replicas each deliver
every alert once."""

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import api
from tests.conftest import make_report
from tests.e2e.fast import FAST_POLICY, SECRET, FastService, report_now
from tests.e2e.test_walking_skeleton import audit_entries, eventually
from tests.receivers import (
    smtp_receiver,
    webhook_receiver,
)


@pytest.fixture
def fast(stack, tmp_path) -> Iterator[FastService]:
    # The receiver verifies every POST as docs/notifier.md shows.
    with webhook_receiver([SECRET]) as webhook, smtp_receiver() as smtp:
        notifier = FastService("notifier", stack, webhook, smtp, tmp_path)
        notifier.add_replica()
        try:
            yield notifier
        finally:
            notifier.stop()


def alerts_for(
    fast: FastService, episode_id: str, kind: str | None = None
) -> list[dict[str, Any]]:
    return [
        p
        for p in fast.webhook.payloads()
        if p.get("episode_id") == episode_id
        and (kind is None or p["obligation"]["kind"] == kind)
    ]


def record_notice(stack, episode_id: str, recipient: str, **extra: Any) -> None:
    body = {
        "recipient": recipient,
        "method": "phone",
        "notified_at": datetime.now(UTC).isoformat(),
        "notified_by": "cw-1",
        **extra,
    }
    answer = api.post(
        f"{stack.url('intake')}/v1/episodes/{episode_id}/notifications",
        json=body,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def test_alerts_remind_escalate_and_breach_until_the_notice_is_recorded(stack, fast):
    episode = report_now(stack)
    episode_id = episode["id"]
    for attempt in eventually(30):
        with attempt:
            reasons = [
                p["reason"]
                for p in alerts_for(fast, episode_id, "law_enforcement_report")
            ]
            assert {"opened", "reminded", "escalated", "breached"} <= set(reasons)
            assert reasons.count("breached") >= 2  # the breach repeats
    le_alerts = alerts_for(fast, episode_id, "law_enforcement_report")
    by_step = {p["step"]: p for p in le_alerts}
    assert by_step["escalate:0"]["level_name"] == "caseworker"
    assert by_step["escalate:1"]["level_name"] == "supervisor"
    assert by_step["breach:0"]["level_name"] == "on-call manager"
    assert by_step["breach:0"]["recipients"] == [
        {"id": "oncall-a", "name": "On-call A"}
    ]

    # Signed, and naming the child by initials only.
    assert fast.webhook.refused == []
    for request in fast.webhook.requests:
        assert request["status"] == 200  # verified (Standard Webhooks)
        assert request["headers"]["webhook-id"] == request["headers"]["X-MFC-Delivery"]
        assert b"Jordan" not in request["body"]
        assert b"Testchild" not in request["body"]
    assert by_step["escalate:0"]["child"] == "J.T."
    for attempt in eventually(15):
        with attempt:
            emails = [m for m in fast.smtp.messages if episode_id in m.get_payload()]
            recipients = {m["To"] for m in emails}
            assert {
                "cw@example.org",
                "sv@example.org",
                "oncall-a@agency.example",
            } <= recipients
    assert all(
        "Jordan" not in m.get_payload() and "Testchild" not in m.get_payload()
        for m in emails
    )

    # NCMEC without the reference number this rule requires: still open, says why.
    record_notice(stack, episode_id, "ncmec")
    record_notice(stack, episode_id, "law_enforcement", reference_number="DPD-1")
    for attempt in eventually(15):
        with attempt:
            obligations = {
                o["kind"]: o
                for o in api.get(
                    f"{fast.url}/v1/obligations",
                    params={"episode_id": episode_id},
                    timeout=5,
                ).json()
            }
            assert obligations["law_enforcement_report"]["status"] == "satisfied"
            assert obligations["ncmec_report"]["status"] == "open"
            assert "reference number" in obligations["ncmec_report"]["waiting_reason"]
    assert obligations["law_enforcement_report"]["breached"] is True
    assert (
        obligations["law_enforcement_report"]["policy_digest"]
        == hashlib.sha256(FAST_POLICY.read_bytes()).hexdigest()
    )
    settled = len(alerts_for(fast, episode_id, "law_enforcement_report"))
    time.sleep(4)  # two breach-repeat periods: a live obligation would alert again
    assert len(alerts_for(fast, episode_id, "law_enforcement_report")) == settled
    assert len(alerts_for(fast, episode_id, "ncmec_report")) > 0

    for attempt in eventually(30):
        with attempt:
            types = Counter(
                e["type"]
                for e in audit_entries(fast.stack, episode_id=episode_id, limit=1000)
            )
            assert types["mfc.obligation.opened"] >= 2
            assert types["mfc.obligation.breached"] >= 2
            assert types["mfc.obligation.satisfied"] >= 1
            assert types["mfc.obligation.waiting"] >= 1
            assert types["mfc.alert.sent"] >= 1


def test_an_ack_snoozes_its_obligation_then_alerting_resumes(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(20):
        with attempt:
            breaches = [
                p
                for p in alerts_for(fast, episode_id, "law_enforcement_report")
                if p["reason"] == "breached"
            ]
            assert breaches
    ack_url = f"{fast.url}/v1/alerts/{breaches[0]['alert_id']}/ack"
    acked = api.post(ack_url, headers=person("oncall", "oncall-a"), timeout=5)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acked_by"] == "oncall-a"  # the token's subject
    acked_at = time.monotonic()
    second = api.post(
        ack_url, json={"note": "on it"}, headers=person("oncall", "sv-1"), timeout=5
    )
    assert [(a["acked_by"], a["note"]) for a in second.json()["acks"]] == [
        ("oncall-a", None),
        ("sv-1", "on it"),
    ]
    count_at_ack = len(alerts_for(fast, episode_id, "law_enforcement_report"))
    time.sleep(2.5)  # inside the 3 s snooze: silence
    assert (
        len(alerts_for(fast, episode_id, "law_enforcement_report")) <= count_at_ack + 1
    )  # one may be in flight
    quiet = len(alerts_for(fast, episode_id, "law_enforcement_report"))
    for attempt in eventually(15):
        with attempt:
            assert len(alerts_for(fast, episode_id, "law_enforcement_report")) > quiet
    assert time.monotonic() - acked_at >= 2.5
    obligation = api.get(
        f"{fast.url}/v1/obligations",
        params={"episode_id": episode_id, "status": "breached"},
        timeout=5,
    ).json()
    assert {o["kind"] for o in obligation} == {
        "law_enforcement_report",
        "ncmec_report",
    }  # an ack never satisfies
    assert api.post(f"{fast.url}/v1/alerts/{uuid4()}/ack", timeout=5).status_code == 404


def person(role: str, subject: str, *counties: str) -> dict[str, str]:
    """The bearer token of a person signed in (``sub``: who they are)."""
    return api.bearer(role, counties=counties or ("KY-111",), subject=subject)


def test_an_ack_is_by_whoever_signed_in_never_by_the_body(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(20):
        with attempt:
            raised = alerts_for(fast, episode_id, "law_enforcement_report")
            assert raised
    first = raised[0]
    ack_url = f"{fast.url}/v1/alerts/{first['alert_id']}/ack"
    forged = api.post(
        ack_url,
        json={"acked_by": "someone-else", "note": "not me"},
        headers=person("caseworker", "cw-1"),
        timeout=5,
    )
    assert forged.status_code == 422, forged.text
    [problem] = forged.json()["detail"]
    assert problem["loc"] == ["body", "acked_by"]
    assert problem["msg"] == "set from your sign-in; do not send it"
    acked = api.post(
        ack_url, json={}, headers=person("caseworker", "cw-1"), timeout=5
    ).json()
    assert [(a["acked_by"], a["note"]) for a in acked["acks"]] == [("cw-1", None)]
    for attempt in eventually(30):
        with attempt:
            events = [
                e["event"]["data"]
                for e in audit_entries(
                    stack, episode_id=episode_id, type="mfc.alert.acknowledged"
                )
            ]
            assert len(events) == 1
    [event] = events
    assert event["acked_by"] == "cw-1"
    assert event["alert_id"] == first["alert_id"]


def test_one_alert_and_the_inboxes_the_console_shows(stack, fast):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(30):
        with attempt:
            le = alerts_for(fast, episode_id, "law_enforcement_report")
            assert {p["reason"] for p in le} >= {"opened", "escalated"}
            assert alerts_for(fast, episode_id, "ncmec_report")
    # The alert links to its console page, with the episode's.
    first = next(p for p in le if p["step"] == "escalate:0")
    assert first["alert_url"] == f"http://127.0.0.1:8000/alerts/{first['alert_id']}"
    assert first["episode_url"] == f"http://127.0.0.1:8000/episodes/{episode_id}"
    assert f"Open and acknowledge: {first['alert_url']}\n" in first["text"]

    oncall = person("oncall", "oncall-a")
    api.post(
        f"{fast.url}/v1/alerts/{first['alert_id']}/ack",
        json={"note": "calling the police"},
        headers=oncall,
        timeout=5,
    )
    one = api.get(
        f"{fast.url}/v1/alerts/{first['alert_id']}", headers=oncall, timeout=5
    )
    assert one.status_code == 200, one.text
    alert = one.json()
    assert alert["id"] == first["alert_id"]
    assert alert["episode_id"] == episode_id
    assert (alert["step_key"], alert["level"], alert["level_name"]) == (
        "escalate:0",
        0,
        "caseworker",
    )
    assert alert["reason"] == "opened"
    assert {"scheduled_at", "created_at", "obligation_id"} <= alert.keys()
    assert alert["recipients"] == [{"id": "cw-1", "name": "Casey Worker"}]  # no email
    assert [(a["acked_by"], a["note"]) for a in alert["acks"]] == [
        ("oncall-a", "calling the police")
    ]
    obligation = alert["obligation"]
    assert obligation["id"] == alert["obligation_id"]
    assert obligation["kind"] == "law_enforcement_report"
    assert obligation["child_initials"] == "J.T."
    assert obligation["source"] == "test rule (seconds instead of hours)"
    # Another county's alert is answered like one that does not exist.
    elsewhere = person("oncall", "oncall-a", "TX-201")
    for alert_id in (first["alert_id"], str(uuid4())):
        missing = api.get(
            f"{fast.url}/v1/alerts/{alert_id}", headers=elsewhere, timeout=5
        )
        assert (missing.status_code, missing.json()) == (
            404,
            {"detail": "no such alert"},
        )

    # The obligations inbox: most urgent first, with each one's alerting state.
    # (This notifier replays earlier tests' episodes too: hence the limit.)
    def obligations(**params: Any) -> list[dict[str, Any]]:
        return api.get(
            f"{fast.url}/v1/obligations",
            params={"status": "open", "limit": 1000, **params},
            headers=oncall,
            timeout=5,
        ).json()

    due = [datetime.fromisoformat(o["due_at"]) for o in obligations()]
    assert due
    assert due == sorted(due)
    mine = {o["kind"]: o for o in obligations(episode_id=episode_id)}
    assert mine.keys() == {"law_enforcement_report", "ncmec_report"}
    for o in mine.values():
        assert o["child_initials"] == "J.T."
        assert o["level_reached"] >= 0
        assert o["last_alert_id"] in {
            p["alert_id"] for p in alerts_for(fast, episode_id, o["kind"])
        }
        assert o["source"] == "test rule (seconds instead of hours)"

    # The alerts inbox: newest first, only those whose obligation is still open.
    def alerts(**params: Any) -> list[dict[str, Any]]:
        return api.get(
            f"{fast.url}/v1/alerts",
            params={"limit": 1000, **params},
            headers=oncall,
            timeout=5,
        ).json()

    record_notice(stack, episode_id, "law_enforcement")
    satisfied = mine["law_enforcement_report"]["id"]
    for attempt in eventually(15):
        with attempt:
            still_open = alerts(open="true", episode_id=episode_id)
            assert {a["obligation_id"] for a in still_open} == {
                mine["ncmec_report"]["id"]
            }
    inbox = alerts(open="true")
    assert satisfied not in {a["obligation_id"] for a in inbox}
    assert {a["id"] for a in still_open} <= {a["id"] for a in inbox}
    created = [datetime.fromisoformat(a["created_at"]) for a in inbox]
    assert created == sorted(created, reverse=True)
    assert satisfied in {
        a["obligation_id"] for a in alerts(episode_id=episode_id)
    }  # without open=true: every alert
    assert len(alerts(limit=3)) == 3
    assert api.get(f"{fast.url}/v1/alerts", headers=elsewhere, timeout=5).json() == []
    # One episode's: in the order they were raised, as before.
    raised = [
        datetime.fromisoformat(a["created_at"]) for a in alerts(episode_id=episode_id)
    ]
    assert raised == sorted(raised)


def _steps_once(fast: FastService, episode_id: str) -> Counter:
    return Counter(
        (p["obligation"]["id"], p["step"]) for p in alerts_for(fast, episode_id)
    )


def test_a_notifier_killed_with_timers_pending_fires_each_overdue_step_once(
    stack, fast
):
    episode_id = report_now(stack)["id"]
    for attempt in eventually(15):
        with attempt:
            assert alerts_for(fast, episode_id)  # the obligations are open and alerting
    fast.replicas[0].kill()
    time.sleep(7)  # reminders, escalations and the breach all come due while it is down
    fast.restart_after_kill()
    for attempt in eventually(30):
        with attempt:
            steps = _steps_once(fast, episode_id)
            assert {step for (_, step) in steps} >= {
                "escalate:0",
                "escalate:1",
                "remind:0",
                "breach:0",
            }
    # Each step made one alert, and a receiver that dedupes on X-MFC-Delivery (the
    # documented contract) pages once per step. A SIGKILL between a send and its
    # commit resends that same delivery: no transport can rule that out.
    alert_ids: dict[tuple[str, str], set[str]] = {}
    for p in alerts_for(fast, episode_id):
        alert_ids.setdefault((p["obligation"]["id"], p["step"]), set()).add(
            p["alert_id"]
        )
    assert all(len(ids) == 1 for ids in alert_ids.values()), alert_ids
    delivered = Counter(
        (p["obligation"]["id"], p["step"])
        for p in fast.webhook.delivered()
        if p.get("episode_id") == episode_id
    )
    assert max(delivered.values()) == 1


def test_two_replicas_deliver_each_alert_once(stack, fast):
    fast.add_replica()
    episodes = [report_now(stack)["id"] for _ in range(4)]
    for attempt in eventually(30):
        with attempt:
            for episode_id in episodes:
                steps = {step for (_, step) in _steps_once(fast, episode_id)}
                assert {"escalate:0", "escalate:1", "breach:0", "breach:1"} <= steps
    for episode_id in episodes:
        assert max(_steps_once(fast, episode_id).values()) == 1
    ids = [p["alert_id"] for p in fast.webhook.payloads()]
    assert len(ids) == len(set(ids))
    assert json.dumps(fast.webhook.payloads()).count("Testchild") == 0


def test_failing_webhook_deliveries_are_retried_then_reported_failed(stack, fast):
    fast.webhook.fail_next = 2
    episode_id = report_now(stack)["id"]
    for attempt in eventually(20):
        with attempt:
            assert any(
                p["step"] == "escalate:0" for p in alerts_for(fast, episode_id)
            )  # after 2 failures
    fast.webhook.fail_next = 10**6  # from now on the receiver is down
    for attempt in eventually(60):
        with attempt:
            failed = [
                e["event"]["data"]
                for e in audit_entries(stack, episode_id=episode_id, limit=1000)
                if e["type"] == "mfc.alert.failed"
            ]
            assert failed
    assert failed[0]["channel"] == "webhook"
    assert failed[0]["attempts"] == 6
    assert "500" in failed[0]["error"]
    assert any(
        episode_id in m.get_payload() for m in fast.smtp.messages
    )  # email still works


def test_the_watchdog_calls_the_heartbeat_and_exports_its_view(stack, fast):
    report_now(stack)
    for attempt in eventually(15):
        with attempt:
            assert fast.webhook.heartbeats >= 2
            metrics = api.get(f"{fast.url}/metrics", timeout=5).text
            assert "mfc_watchdog_healthy 1.0" in metrics
            assert (
                'mfc_open_obligations{breached="false",jurisdiction="KY-111",kind="law_enforcement_report"}'
                in metrics
                or (
                    'mfc_open_obligations{breached="true",jurisdiction="KY-111",kind="law_enforcement_report"}'
                    in metrics
                )
            )
    assert "mfc_watchdog_stuck_steps 0.0" in metrics
    assert "mfc_timer_lateness_seconds_count" in metrics
    assert "mfc_alert_lateness_seconds_count" in metrics


def test_an_endangerment_learned_later_opens_floridas_immediate_report(stack):
    """Florida asks for an immediate report for an endangered child; when the
    endangerment comes in an update, the rule applies from then on, with its clock
    starting when the agency learned it (the stack's notifier, the shipped policy)."""
    report = make_report(county_code="FL-086", child={"date_of_birth": "2010-03-01"})
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    assert answer.status_code == 201, answer.text
    episode_id = answer.json()["id"]

    def kinds() -> dict[str, dict[str, Any]]:
        listed = api.get(
            f"{stack.url('notifier')}/v1/obligations",
            params={"episode_id": episode_id},
            timeout=5,
        ).json()
        return {o["kind"]: o for o in listed}

    for attempt in eventually(30):
        with attempt:
            assert "law_enforcement_report" in kinds()
    assert "law_enforcement_report_immediate" not in kinds()

    before = datetime.now(UTC)
    post_update(stack, episode_id, {"suicidal_tendencies": True})
    for attempt in eventually(30):
        with attempt:
            opened_now = kinds()
            assert "law_enforcement_report_immediate" in opened_now
    immediate = opened_now["law_enforcement_report_immediate"]
    clock_start = datetime.fromisoformat(immediate["clock_start"])
    assert clock_start >= before - timedelta(seconds=5)  # not the report's clock
    assert datetime.fromisoformat(immediate["due_at"]) - clock_start == timedelta(
        hours=1
    )
    for attempt in eventually(30):
        with attempt:
            opened = {
                e["event"]["data"]["kind"]: e["event"]["data"]
                for e in audit_entries(
                    stack, episode_id=episode_id, type="mfc.obligation.opened"
                )
            }
            assert "law_enforcement_report_immediate" in opened
    assert opened["law_enforcement_report_immediate"]["opened_by"] == "update"
    assert opened["law_enforcement_report"]["opened_by"] == "reported"
    # Another update does not open it twice.
    handled = messages_handled(stack.url("notifier"))
    post_update(stack, episode_id, {"pregnant": True})
    for attempt in eventually(30):
        with attempt:
            assert messages_handled(stack.url("notifier")) > handled
    opened = [
        e["event"]["data"]["kind"]
        for e in audit_entries(
            stack, episode_id=episode_id, type="mfc.obligation.opened", limit=100
        )
    ]
    assert opened.count("law_enforcement_report_immediate") == 1


def post_update(stack, episode_id: str, endangerments: dict[str, Any]) -> None:
    answer = api.post(
        f"{stack.url('intake')}/v1/episodes/{episode_id}/updates",
        json={"endangerments": endangerments, "updated_by": "cw-1"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def messages_handled(url: str) -> float:
    metrics = api.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "mfc_messages"
        for sample in family.samples
        if sample.name == "mfc_messages_total"
        and sample.labels["outcome"] == "processed"
    )
