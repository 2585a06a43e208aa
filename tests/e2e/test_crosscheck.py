"""The cross-check through the real stack (issue 22, part 2): intake stamps the
policy of record on each report and announces it; the audit service derives every
duty from the episode events and that policy, beside what the notifier opened, and
names each difference, online and offline from an export, byte for byte."""

import asyncio
import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from devtools.cli import main as mfc
from shared import topics
from shared.adoption import adopted
from shared.clock import SystemClock
from shared.events import CloudEvent, EpisodeReported, EventType
from shared.policy import default_policy_path, parse_policy
from tests import api
from tests.conftest import make_report
from tests.e2e.fast import FAST_POLICY, SECRET, FastService, report_of_now
from tests.e2e.test_audit import notify_law_enforcement, report, trail
from tests.e2e.test_walking_skeleton import eventually
from tests.kafka_helpers import produce
from tests.receivers import smtp_receiver, webhook_receiver

PII = api.bearer("auditor_pii")
"""The derived view reads the facts the rules read (age, endangerments): an export
for it is made with the auditor_pii grant."""

PROBE = b"""
[[jurisdictions."KY-111".obligations]]
id = "crosscheck_probe_notice"
title = "Tell the caregiver (a duty only this test's policy has)"
opens_on = "reported"
clock = "agency_learned_at"
due = "4s"
satisfied_by = { recipient = "caregiver" }
source = "test rule for the cross-check"
"""


def compliance(stack, **params) -> dict:
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/compliance", params=params, timeout=60
    )
    assert answer.status_code == 200, answer.text
    result: dict = answer.json()
    return result


def rows_of(result: dict, episode_id: str) -> dict[str, dict]:
    return {
        row["kind"]: row
        for row in result["crosscheck"]["rows"]
        if row["episode_id"] == episode_id
    }


def offline_matches_online(stack, county: str, tmp_path: Path, capsys) -> str:
    """The cross-check CSV online, and the same bytes from an export."""
    as_of = datetime.now(UTC).isoformat()
    scope = {"county": county, "as_of": as_of}
    online = api.get(
        f"{stack.url('audit')}/v1/audit/compliance",
        params={**scope, "format": "csv", "view": "crosscheck"},
        timeout=60,
    )
    assert online.status_code == 200, online.text
    answer = api.get(
        f"{stack.url('audit')}/v1/audit/entries",
        params={"county": county, "format": "jsonl"},
        headers=PII,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    export = tmp_path / f"{county}.jsonl"
    export.write_text(answer.text)
    capsys.readouterr()
    args = ["audit", "compliance", "--export", str(export), "--county", county]
    assert mfc([*args, "--as-of", as_of, "--view", "crosscheck"]) == 0
    assert capsys.readouterr().out.encode() == online.content
    return online.text


def test_the_notifier_and_the_derived_view_agree_on_a_real_episode(
    stack, tmp_path: Path, capsys
):
    episode_id = report(stack, learned_ago=timedelta(hours=3))  # NC: late for LE
    notify_law_enforcement(stack, episode_id)
    shipped = hashlib.sha256(default_policy_path().read_bytes()).hexdigest()
    # The audit reads the episode and obligation topics each at its own pace: both
    # views settle once both are in.
    for attempt in eventually(60):
        with attempt:
            entries = trail(stack, episode_id)
            types = [e["type"] for e in entries]
            assert {"mfc.obligation.satisfied", EventType.EPISODE_REPORTED} <= set(
                types
            )
            rows = rows_of(compliance(stack, county="NC-063"), episode_id)
            assert {"law_enforcement_report", "ncmec_report"} <= rows.keys()
            for kind, row in rows.items():
                assert row["finding"] is None, (kind, row)
                assert row["notifier_outcome"] == row["derived_outcome"], row
    reported = [e for e in entries if e["type"] == EventType.EPISODE_REPORTED]
    assert reported[0]["event"]["data"]["policy_digest"] == shipped
    policy = api.get(f"{stack.url('audit')}/v1/audit/policies/{shipped}", timeout=10)
    assert policy.status_code == 200, policy.text
    for row in rows.values():
        assert row["policy_of_record"] == row["notifier_policy_digest"] == shipped
        assert row["notifier_due_at"] == row["derived_due_at"]
    assert rows["law_enforcement_report"]["derived_outcome"] == "late"
    text = offline_matches_online(stack, "NC-063", tmp_path, capsys)
    assert episode_id in text


def test_a_notice_without_the_photo_is_notified_incomplete_not_met(stack):
    """Issue 22, part 3: the federal law-enforcement report must include a photo.
    Law enforcement is told in time, but the report has none: the duty stays open
    saying why, and once past due the report says "notified, incomplete" in both
    views. The photo sent later and the notice recorded again satisfy it (late)."""
    learned = datetime.now(UTC) - timedelta(hours=30)  # federal NCMEC: 24 h
    body = make_report(
        county_code="NC-063",
        last_seen_at=(learned - timedelta(hours=2)).isoformat(),
        discovered_at=(learned - timedelta(hours=1)).isoformat(),
        agency_learned_at=learned.isoformat(),
    )
    body["child"]["photo_url"] = None
    intake = stack.url("intake")
    answer = api.post(f"{intake}/v1/episodes", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    episode_id = answer.json()["id"]
    notice = {
        "recipient": "ncmec",
        "method": "online",
        "notified_at": (learned + timedelta(hours=1)).isoformat(),
        "notified_by": "cw-1",
        "reference_number": "NCMEC-77",
    }
    told = api.post(
        f"{intake}/v1/episodes/{episode_id}/notifications", json=notice, timeout=10
    )
    assert told.status_code == 201, told.text
    for attempt in eventually(60):
        with attempt:
            entries = trail(stack, episode_id)
            types = [e["type"] for e in entries]
            assert {"mfc.obligation.waiting", "mfc.notification.recorded"} <= set(types)
            result = compliance(stack, county="NC-063")
            ncmec = rows_of(result, episode_id)["ncmec_report"]
            assert (ncmec["notifier_outcome"], ncmec["derived_outcome"]) == (
                "incomplete",
                "incomplete",
            )
    recorded = [e for e in entries if e["type"] == "mfc.notification.recorded"]
    lacked = recorded[0]["event"]["data"]["missing_items"]
    assert {"child.photo_url", "law_enforcement_report_number"} <= set(lacked)
    assert ncmec["finding"] is None
    mine = next(
        o
        for e in result["episodes"]
        if e["episode_id"] == episode_id
        for o in e["obligations"]
        if o["kind"] == "ncmec_report"
    )
    assert "without a photo" in mine["waiting_reason"]

    # The photo, and the law-enforcement report number, then the notice again.
    update = {"child": {"photo_url": "https://photos.example.org/p/3.jpg"}}
    for path, data in (
        ("updates", {**update, "updated_by": "cw-1"}),
        (
            "notifications",
            {**notice, "recipient": "law_enforcement", "reference_number": "DPD-9"},
        ),
        ("notifications", {**notice, "notified_at": datetime.now(UTC).isoformat()}),
    ):
        sent = api.post(
            f"{intake}/v1/episodes/{episode_id}/{path}", json=data, timeout=10
        )
        assert sent.status_code == 201, sent.text
    for attempt in eventually(60):
        with attempt:
            rows = rows_of(compliance(stack, county="NC-063"), episode_id)
            assert rows["ncmec_report"]["notifier_outcome"] == "late"
    assert rows["ncmec_report"]["derived_outcome"] == "late"


@pytest.fixture
def forgetful_notifier(stack, tmp_path) -> Iterator[tuple[bytes, bytes]]:
    """A notifier whose own policy has the probe duty disabled; the policy of
    record has it enabled. Yields both files' bytes."""
    of_record = FAST_POLICY.read_bytes() + PROBE
    notifiers = of_record.replace(
        b'id = "crosscheck_probe_notice"\n',
        b'id = "crosscheck_probe_notice"\ndisabled = true\n',
    )
    path = tmp_path / "notifier_policy.toml"
    path.write_bytes(notifiers)
    with webhook_receiver([SECRET]) as webhook, smtp_receiver() as smtp:
        service = FastService("notifier", stack, webhook, smtp, tmp_path)
        service.overrides["NOTIFIER_POLICY_PATH"] = str(path)
        service.add_replica()
        try:
            yield of_record, notifiers
        finally:
            service.stop()


def test_a_duty_the_notifier_never_opened_is_reported_missing(
    stack, forgetful_notifier, tmp_path: Path, capsys
):
    """The report and the policy of record are published as an intake running that
    policy would publish them (a second real intake would replay every county's
    inbound topic into new episodes); the notifier, running a copy with the rule
    disabled, opens the other duties and not this one."""
    of_record, notifiers = forgetful_notifier
    policy = parse_policy(of_record, origin="record_policy.toml")
    announced = adopted(policy, source="test/intake", clock=SystemClock(), by="intake")
    data = report_of_now()
    episode_id = uuid4()
    canonical = EpisodeReported.model_validate(
        {**data, "episode_id": episode_id, "policy_digest": policy.digest}
    )
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="test/intake",
        subject=str(episode_id),
        data=canonical,
        time=datetime.now(UTC),
    )
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topics.POLICIES,
            (policy.digest.encode(), announced.to_bytes()),
        )
    )
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topics.EPISODES,
            (str(episode_id).encode(), event.to_bytes()),
        )
    )
    forgetful = hashlib.sha256(notifiers).hexdigest()
    for attempt in eventually(60):
        with attempt:
            rows = rows_of(compliance(stack, county="KY-111"), str(episode_id))
            assert {"law_enforcement_report", "crosscheck_probe_notice"} <= rows.keys()
            assert rows["law_enforcement_report"]["notifier_policy_digest"] in {
                forgetful,
                hashlib.sha256(default_policy_path().read_bytes()).hexdigest(),
            }
            probe = rows["crosscheck_probe_notice"]
            assert probe["derived_outcome"] == "missing"  # due 4 s after the report
            opened = [
                e["event"]["data"]
                for e in trail(stack, str(episode_id))
                if e["type"] == "mfc.obligation.opened"
            ]
            digests = {o["policy_digest"] for o in opened}
            assert forgetful in digests, "the forgetful notifier ran"
    assert probe["finding"] == "duty never opened"
    assert probe["obligation_id"] is None
    assert probe["notifier_outcome"] is None
    assert probe["policy_of_record"] == policy.digest
    learned = datetime.fromisoformat(data["agency_learned_at"])
    assert datetime.fromisoformat(probe["derived_due_at"]) == learned + timedelta(
        seconds=4
    )
    assert "crosscheck_probe_notice" not in {o["kind"] for o in opened}

    text = offline_matches_online(stack, "KY-111", tmp_path, capsys)
    found = [
        row
        for row in csv.DictReader(io.StringIO(text))
        if row["episode_id"] == str(episode_id)
        and row["kind"] == "crosscheck_probe_notice"
    ]
    assert [row["finding"] for row in found] == ["duty never opened"]
