"""The notifier end to end with a policy in seconds: alerts, reminders, escalation
and breach reach a real HTTP receiver and a real SMTP server; recording the notice
stops them; acks snooze; a SIGKILL with timers pending and two replicas each deliver
every alert once."""

import hashlib
import hmac
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
    with webhook_receiver() as webhook, smtp_receiver() as smtp:
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
        if p["episode_id"] == episode_id
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
    for request in fast.webhook.requests:
        expected = (
            "sha256="
            + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
        )
        assert request["headers"]["X-MFC-Signature"] == expected
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
    acked = api.post(
        f"{fast.url}/v1/alerts/{breaches[0]['alert_id']}/ack",
        json={"acked_by": "oncall-a"},
        timeout=5,
    )
    assert acked.status_code == 200
    acked_at = time.monotonic()
    second = api.post(
        f"{fast.url}/v1/alerts/{breaches[0]['alert_id']}/ack",
        json={"acked_by": "sv-1", "note": "on it"},
        timeout=5,
    )
    assert [a["acked_by"] for a in second.json()["acks"]] == ["oncall-a", "sv-1"]
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
    assert (
        api.post(
            f"{fast.url}/v1/alerts/{uuid4()}/ack", json={"acked_by": "x"}, timeout=5
        ).status_code
        == 404
    )


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
        if p["episode_id"] == episode_id
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
