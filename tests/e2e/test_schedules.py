"""On-call schedules changed while the system runs, through two real notifier
replicas: an override added on one pages through both, refusals say why, and the
schedule's calendar feed carries the override."""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from tests import api
from tests.e2e.fast import FAST_POLICY, SECRET, FastService, report_now
from tests.e2e.test_walking_skeleton import audit_entries, eventually
from tests.receivers import smtp_receiver, webhook_receiver

ADMIN = api.bearer("admin", subject="admin-7")
ONCALL = api.bearer("oncall", counties=["KY-111"])


@pytest.fixture
def notifier(stack, tmp_path) -> Iterator[FastService]:
    with webhook_receiver([SECRET]) as webhook, smtp_receiver() as smtp:
        service = FastService("notifier", stack, webhook, smtp, tmp_path)
        service.overrides["NOTIFIER_CALENDAR_SECRET"] = "calendar-secret-for-tests-only"
        service.add_replica()
        service.add_replica()
        try:
            yield service
        finally:
            service.stop()


def override(url: str, headers=ADMIN, *, anonymous: bool = False, **body):
    now = datetime.now(UTC)
    asked = {
        "contact": "oncall-b",
        "start": now.isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "reason": "sick day",
        **body,
    }
    return api.post(
        f"{url}/v1/schedules/managers/overrides",
        json=asked,
        headers=headers,
        anonymous=anonymous,
        timeout=10,
    )


def schedule(url: str) -> dict:
    answer = api.get(f"{url}/v1/schedules/managers", headers=ONCALL, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def on_call_level_pages(notifier: FastService, episode_id: str) -> list[dict]:
    return [
        p
        for p in notifier.webhook.payloads()
        if p.get("episode_id") == episode_id and p["level_name"] == "on-call manager"
    ]


def test_an_override_added_on_one_replica_changes_who_both_page(stack, notifier):
    first, second = (r.url for r in notifier.replicas)
    assert schedule(second)["on_call_now"]["id"] == "oncall-a"
    episodes = [report_now(stack)["id"] for _ in range(4)]  # duties open now
    added = override(first)
    assert added.status_code == 201, added.text
    assert added.json()["created_by"] == "admin-7"
    # In force at once on the other replica, as the lookup alerts use shows.
    shown = schedule(second)
    assert shown["on_call_now"] == {"id": "oncall-b", "name": "On-call B"}
    assert [o["id"] for o in shown["overrides"]] == [added.json()["id"]]

    # The on-call level (4 s after each report) pages the cover, whichever
    # replica fires it.
    for attempt in eventually(30):
        with attempt:
            pages = [p for e in episodes for p in on_call_level_pages(notifier, e)]
            assert {p["episode_id"] for p in pages} == set(episodes)
    assert {r["id"] for p in pages for r in p["recipients"]} == {"oncall-b"}

    removed = api.delete(
        f"{second}/v1/schedules/managers/overrides/{added.json()['id']}",
        params={"reason": "back at work"},
        headers=ADMIN,
        timeout=10,
    )
    assert removed.status_code == 200, removed.text
    assert schedule(first)["on_call_now"]["id"] == "oncall-a"
    later = report_now(stack)["id"]
    for attempt in eventually(30):
        with attempt:
            pages = on_call_level_pages(notifier, later)
            assert pages
    assert {r["id"] for p in pages for r in p["recipients"]} == {"oncall-a"}

    # Both changes are in the audit trail, with who made them and why.
    for attempt in eventually(20):
        with attempt:
            trail = {
                e["type"]: e["event"]["data"]
                for e in audit_entries(stack, type="mfc.schedule.override_removed")
                + audit_entries(stack, type="mfc.schedule.override_added")
                if e["event"]["data"]["override_id"] == added.json()["id"]
            }
            assert set(trail) == {
                "mfc.schedule.override_added",
                "mfc.schedule.override_removed",
            }
    assert trail["mfc.schedule.override_added"]["reason"] == "sick day"
    assert trail["mfc.schedule.override_removed"]["removal_reason"] == "back at work"


def test_an_override_that_cannot_be_is_refused_saying_why(notifier):
    url = notifier.url
    soon = datetime.now(UTC) + timedelta(days=3)
    first = override(
        url, start=soon.isoformat(), end=(soon + timedelta(hours=8)).isoformat()
    )
    assert first.status_code == 201, first.text

    overlapping = override(
        notifier.replicas[1].url,
        start=(soon + timedelta(hours=4)).isoformat(),
        end=(soon + timedelta(hours=12)).isoformat(),
    )
    assert overlapping.status_code == 409
    assert first.json()["id"] in overlapping.json()["detail"]
    assert "remove that one first" in overlapping.json()["detail"]

    yesterday = datetime.now(UTC) - timedelta(days=1)
    past = override(
        url,
        start=yesterday.isoformat(),
        end=(yesterday + timedelta(hours=2)).isoformat(),
    )
    assert past.status_code == 422
    [problem] = past.json()["detail"]
    assert problem["loc"] == ["body", "end"]
    assert "in the past" in problem["msg"]

    nobody = override(url, contact="oncall-z")
    assert nobody.status_code == 422
    assert "unknown contact 'oncall-z'" in nobody.json()["detail"][0]["msg"]

    misspelled = override(url, reson="typo")
    assert misspelled.status_code == 422
    assert ["body", "reson"] in [p["loc"] for p in misspelled.json()["detail"]]

    assert override(url, headers=ONCALL).status_code == 403
    # Schedules serve every county: an admin of one county may not change them.
    scoped = override(url, headers=api.bearer("admin", counties=["KY-111"]))
    assert scoped.status_code == 403
    assert "every county" in scoped.json()["detail"]
    assert override(url, headers={}, anonymous=True).status_code == 401
    missing = api.post(
        f"{url}/v1/schedules/nobody/overrides",
        json={
            "contact": "oncall-b",
            "start": soon.isoformat(),
            "end": (soon + timedelta(hours=1)).isoformat(),
            "reason": "x",
        },
        headers=ADMIN,
        timeout=10,
    )
    assert missing.status_code == 404
    assert "managers" in missing.json()["detail"]  # the schedules there are


def test_the_calendar_feed_carries_the_override_and_opens_only_with_its_key(notifier):
    soon = datetime.now(UTC) + timedelta(days=10)
    added = override(
        notifier.url,
        start=soon.isoformat(),
        end=(soon + timedelta(hours=8)).isoformat(),
        reason="shift swap",
    )
    assert added.status_code == 201, added.text

    signed_in = api.get(
        f"{notifier.url}/v1/schedules/managers/calendar.ics", headers=ONCALL, timeout=10
    )
    assert signed_in.status_code == 200
    assert signed_in.headers["content-type"].startswith("text/calendar")
    events = list(Calendar.from_ical(signed_in.content).walk("VEVENT"))
    [covered] = [e for e in events if "[override]" in str(e["SUMMARY"])]
    assert str(covered["SUMMARY"]) == "On call (managers): On-call B [override]"
    assert "shift swap" in str(covered["DESCRIPTION"])
    assert abs(covered.start - soon) < timedelta(seconds=1)

    address = schedule(notifier.url)["calendar_url"]
    by_key = api.get(f"{notifier.replicas[1].url}{address}", anonymous=True, timeout=10)
    assert by_key.status_code == 200
    assert by_key.content.count(b"BEGIN:VEVENT") == len(events)
    wrong = api.get(
        f"{notifier.url}/v1/calendars/managers.ics",
        params={"key": "0" * 32},
        anonymous=True,
        timeout=10,
    )
    assert wrong.status_code == 404
    assert (
        api.get(
            f"{notifier.url}/v1/schedules/managers/calendar.ics",
            anonymous=True,
            timeout=10,
        ).status_code
        == 401
    )


def test_the_policy_both_replicas_decide_by_is_in_the_trail_once(stack, notifier):
    """Issue 22, part 1: every obligation's ``policy_digest`` resolves to the policy
    file's content in the trail, announced by each replica (and every fast notifier
    of the session) yet appended once."""
    digest = hashlib.sha256(FAST_POLICY.read_bytes()).hexdigest()
    episode_id = report_now(stack)["id"]
    for attempt in eventually(30):
        with attempt:
            opened = [
                e["event"]["data"]
                for e in audit_entries(stack, episode_id=episode_id)
                if e["type"] == "mfc.obligation.opened"
                and e["event"]["data"]["policy_digest"] == digest
            ]
            assert opened
            listed = api.get(f"{stack.url('audit')}/v1/audit/policies", timeout=10)
            assert listed.status_code == 200, listed.text
            assert [p["digest"] for p in listed.json()["policies"]].count(digest) == 1
    one = api.get(f"{stack.url('audit')}/v1/audit/policies/{digest}", timeout=10)
    assert one.status_code == 200, one.text
    policy = one.json()
    assert hashlib.sha256(policy["content"].encode()).hexdigest() == digest
    assert (policy["file_name"], policy["adopted_by"]) == (
        "fast_policy.toml",
        "notifier",
    )
    unknown = api.get(f"{stack.url('audit')}/v1/audit/policies/{'0' * 64}", timeout=10)
    assert unknown.status_code == 404
    assert "no policy with sha256" in unknown.json()["detail"]
    assert (
        api.get(f"{stack.url('audit')}/v1/audit/policies/not-a-digest", timeout=10)
    ).status_code == 422
