"""Intake, complete: the lifecycle over HTTP and Kafka, refusals, idempotency under
concurrency, pagination, no 5xx for any input, and a SIGKILL mid-stream."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from intake.domain.lifecycle import LATER_EVENTS
from intake.entrypoints.stream import ROUTING_KEYS
from shared import topics
from shared.events import INBOUND_DATA, CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.e2e.test_walking_skeleton import audit_entries, eventually
from tests.kafka_helpers import produce
from tests.unit.intake.test_report_properties import json_values, mutated_reports


def now() -> datetime:
    return datetime.now(UTC)


def post(stack, path: str, body: Any, **headers: str) -> httpx.Response:
    return api.post(
        f"{stack.url('intake')}{path}", json=body, headers=headers, timeout=15
    )


def send(stack, topic: str, key: str, *events: CloudEvent) -> None:
    """Produce ``events`` to ``topic`` in order, all under ``key``."""
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topic,
            *[(key.encode(), event.to_bytes()) for event in events],
        )
    )


def open_episode(stack, **overrides: Any) -> dict[str, Any]:
    answer = post(stack, "/v1/episodes", make_report(**overrides))
    assert answer.status_code == 201, answer.text
    return answer.json()


def canonical_types(stack, episode_id: str) -> list[str]:
    return [
        e["type"]
        for e in audit_entries(stack, episode_id=episode_id)
        if e["topic"] == topics.EPISODES
    ]


def test_the_lifecycle_over_http_reaches_the_trail_in_order(stack):
    report = make_report()
    report["child"]["photo_url"] = None
    created = post(stack, "/v1/episodes", report)
    assert created.status_code == 201
    episode = created.json()
    base = f"/v1/episodes/{episode['id']}"
    assert "child.photo_url" in episode["completeness"]

    updated = post(
        stack,
        f"{base}/updates",
        {
            "child": {"photo_url": "https://photos.example.org/new.jpg"},
            "note": "photo from school",
        },
    )
    assert updated.status_code == 201
    assert "child.photo_url" not in updated.json()["completeness"]
    notice = {
        "recipient": "law_enforcement",
        "method": "phone",
        "notified_at": now().isoformat(),
        "reference_number": "DPD-2026-1",
        "notified_by": "cw-1",
    }
    assert post(stack, f"{base}/notifications", notice).status_code == 201
    located_at = now()
    located = post(
        stack,
        f"{base}/located",
        {"located_at": located_at.isoformat(), "location_type": "shelter"},
    )
    assert located.json()["status"] == "located"
    screened = post(
        stack,
        f"{base}/screening",
        {
            "completed_at": now().isoformat(),
            "trafficking_indicated": False,
            "screened_by": "cw-1",
        },
    )
    assert screened.status_code == 201
    closed = post(
        stack,
        f"{base}/close",
        {
            "closed_at": now().isoformat(),
            "reason": "returned, debriefed",
            "closed_by": "sv-1",
        },
    )
    assert closed.json()["status"] == "closed"

    expected = [
        EventType.EPISODE_REPORTED,
        EventType.EPISODE_UPDATED,
        EventType.NOTIFICATION_RECORDED,
        EventType.EPISODE_LOCATED,
        EventType.SCREENING_COMPLETED,
        EventType.EPISODE_CLOSED,
    ]
    timeline = api.get(f"{stack.url('intake')}{base}", timeout=10).json()["timeline"]
    assert [t["type"] for t in timeline] == expected
    for attempt in eventually():
        with attempt:
            assert canonical_types(stack, episode["id"]) == expected
    [update] = [
        e
        for e in audit_entries(stack, episode_id=episode["id"])
        if e["type"] == EventType.EPISODE_UPDATED
    ]
    assert update["event"]["data"]["completeness"] == updated.json()["completeness"]
    assert update["event"]["data"]["county_code"] == "NC-063"


def test_events_that_do_not_fit_the_episode_are_refused(stack):
    episode = open_episode(stack)
    base = f"/v1/episodes/{episode['id']}"
    screening = {
        "completed_at": now().isoformat(),
        "trafficking_indicated": False,
        "screened_by": "x",
    }
    early = post(stack, f"{base}/screening", screening)
    assert early.status_code == 409
    assert "located" in early.json()["detail"]

    future = post(
        stack,
        f"{base}/located",
        {
            "located_at": (now() + timedelta(hours=2)).isoformat(),
            "location_type": "home",
        },
    )
    assert future.status_code == 422
    assert future.json()["detail"][0]["loc"] == ["body", "located_at"]

    post(
        stack,
        f"{base}/close",
        {"closed_at": now().isoformat(), "reason": "r", "closed_by": "sv"},
    )
    after = post(stack, f"{base}/updates", {"note": "too late"})
    assert after.status_code == 409
    assert "closed" in after.json()["detail"]

    unknown = post(stack, f"/v1/episodes/{uuid4()}/updates", {"note": "who?"})
    assert unknown.status_code == 404
    for attempt in eventually():
        with attempt:
            assert canonical_types(stack, episode["id"]) == [
                EventType.EPISODE_REPORTED,
                EventType.EPISODE_CLOSED,
            ]


def test_one_refusal_names_every_field_at_fault(stack):
    """Schema errors and the deployment's rules come in one 422, over HTTP, and in
    one dead letter over Kafka: a county fixes everything in one round."""
    body = make_report(
        county_code="WA-033",  # a real county, not served here
        agency_learned_at=(now() + timedelta(hours=2)).isoformat(),
        child={"sex": "robot"},
    )
    answer = post(stack, "/v1/episodes", body)
    assert answer.status_code == 422
    locs = [p["loc"] for p in answer.json()["detail"]]
    assert ["body", "child", "sex"] in locs
    assert ["body", "county_code"] in locs
    assert ["body", "agency_learned_at"] in locs

    episode = open_episode(stack)
    located = post(
        stack,
        f"/v1/episodes/{episode['id']}/located",
        {"located_at": (now() + timedelta(hours=2)).isoformat(), "location_type": ""},
    )
    assert located.status_code == 422
    assert sorted(p["loc"] for p in located.json()["detail"]) == [
        ["body", "located_at"],
        ["body", "location_type"],
    ]

    inbound = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/WA-033",
        subject=None,
        data=body,
        time=now(),
    )
    send(stack, topics.INBOUND, body["case_id"], inbound)
    reason = dead_letter_reason(stack, inbound.id)
    for field in ("data.child.sex", "data.county_code", "data.agency_learned_at"):
        assert field in reason


def dead_letter(
    stack, event_id: str, consumer: str = "intake-inbound", **query: str
) -> dict[str, Any]:
    """What ``consumer`` recorded when it dead-lettered ``event_id`` (``query``
    narrows the audit search, e.g. to an episode)."""
    for attempt in eventually():
        with attempt:
            letters = [
                e["event"]["data"]
                for e in audit_entries(
                    stack, type=EventType.DEADLETTER_RECORDED, limit=1000, **query
                )
                if e["event"]["data"].get("original_event_id") == event_id
                and e["event"]["data"]["consumer"] == consumer
            ]
            assert len(letters) == 1
    return dict(letters[0])


def dead_letter_reason(stack, event_id: str, **query: str) -> str:
    """The reason intake gave for dead-lettering ``event_id``."""
    return str(dead_letter(stack, event_id, **query)["reason"])


def test_a_malformed_obligation_or_prompt_event_is_dead_lettered_without_retries(
    stack,
):
    """The deadline projection cannot apply an event that lacks its fields; no retry
    can mend that, so it is dead-lettered at the first attempt (not after the
    retries, which would hold up every later event of its partition)."""
    episode = open_episode(stack)
    malformed = CloudEvent.new(
        type="mfc.prompt.issued",
        source="service/followup",
        subject=episode["id"],
        data={"episode_id": episode["id"], "kind": "welfare_check"},  # no prompt_id
        time=now(),
    )
    send(stack, topics.PROMPTS, episode["id"], malformed)
    letter = dead_letter(
        stack, malformed.id, consumer="intake-deadlines", episode_id=episode["id"]
    )
    assert letter["attempts"] == 1
    assert "prompt_id" in letter["reason"]
    assert letter["original_topic"] == topics.PROMPTS


def test_a_closed_case_can_be_reported_again_as_a_new_episode(stack):
    report = make_report()
    first = post(stack, "/v1/episodes", report).json()
    post(
        stack,
        f"/v1/episodes/{first['id']}/close",
        {"closed_at": now().isoformat(), "reason": "found", "closed_by": "sv"},
    )
    second = post(stack, "/v1/episodes", report)
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_the_same_event_twice_is_recorded_once(stack):
    episode = open_episode(stack)
    notice = {
        "recipient": "ncmec",
        "method": "online",
        "notified_at": now().isoformat(),
        "reference_number": "NCMEC-77",
        "notified_by": "cw-1",
    }
    path = f"/v1/episodes/{episode['id']}/notifications"
    assert [post(stack, path, notice).status_code for _ in range(3)] == [201, 200, 200]
    timeline = api.get(
        f"{stack.url('intake')}/v1/episodes/{episode['id']}", timeout=10
    ).json()["timeline"]
    assert [t["type"] for t in timeline].count(EventType.NOTIFICATION_RECORDED) == 1


def test_an_idempotency_key_replays_and_refuses_a_different_request(stack):
    key = f"county-retry-{uuid4()}"
    report = make_report()
    first = post(stack, "/v1/episodes", report, **{"Idempotency-Key": key})
    again = post(stack, "/v1/episodes", report, **{"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = post(stack, "/v1/episodes", make_report(), **{"Idempotency-Key": key})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]


def test_twenty_identical_reports_at_once_make_one_episode(stack):
    report = make_report()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(lambda _: post(stack, "/v1/episodes", report), range(20))
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    for attempt in eventually():
        with attempt:
            assert canonical_types(stack, answers[0].json()["id"]) == [
                EventType.EPISODE_REPORTED
            ]
    time.sleep(1)  # a second canonical event, if the code had one, would be out by now
    assert canonical_types(stack, answers[0].json()["id"]) == [
        EventType.EPISODE_REPORTED
    ]


def test_episodes_are_listed_by_county_and_status_a_page_at_a_time(stack):
    county = "MO-510"
    made = {open_episode(stack, county_code=county)["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"county": county, "status": "missing", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(
            f"{stack.url('intake')}/v1/episodes", params=params, timeout=10
        ).json()
        seen += [e["id"] for e in page["episodes"]]
        assert all(e["county_code"] == county for e in page["episodes"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen))


def test_later_events_arrive_over_kafka_too_and_misfits_are_dead_lettered(stack):
    episode = open_episode(stack)

    def inbound(event_type: str, data: dict[str, Any]) -> CloudEvent:
        return CloudEvent.new(
            type=event_type,
            source="county/NC-063",
            subject=episode["id"],
            data=data,
            time=now(),
        )

    notice = inbound(
        EventType.NOTIFICATION_RECORDED,
        {
            "recipient": "law_enforcement",
            "method": "system",
            "notified_at": now().isoformat(),
            "notified_by": "cad",
        },
    )
    misfit = inbound(
        EventType.SCREENING_COMPLETED,
        {
            "completed_at": now().isoformat(),
            "trafficking_indicated": True,
            "screened_by": "cw",
        },
    )
    send(stack, topics.INBOUND, episode["id"], notice, notice, misfit)
    for attempt in eventually():
        with attempt:
            assert canonical_types(stack, episode["id"]) == [
                EventType.EPISODE_REPORTED,
                EventType.NOTIFICATION_RECORDED,
            ]
    assert "located" in dead_letter_reason(stack, misfit.id, episode_id=episode["id"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(mutated_reports(finite=True), json_values(finite=True)))
def test_no_input_makes_the_api_fail(stack, body):
    answer = post(stack, "/v1/episodes", body)
    assert answer.status_code in {200, 201, 409, 422}, answer.text
    if answer.status_code == 422:
        for problem in answer.json()["detail"]:
            assert problem["loc"]
            assert problem["msg"]
            assert "input" not in problem  # no personal data echoed back


LATER_PATHS = ["updates", "notifications", "located", "screening", "close"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(LATER_PATHS), body=json_values(finite=True))
def test_no_later_event_makes_the_api_fail(stack, open_episode_id, path, body):
    answer = post(stack, f"/v1/episodes/{open_episode_id}/{path}", body)
    assert answer.status_code in {200, 201, 409, 422}, answer.text
    if answer.status_code == 422:
        for problem in answer.json()["detail"]:
            assert problem["loc"]
            assert problem["msg"]
            assert "input" not in problem


@pytest.fixture
def open_episode_id(stack) -> str:
    return str(open_episode(stack)["id"])


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(
        st.tuples(
            st.sampled_from(sorted(INBOUND_DATA)),
            st.one_of(mutated_reports(finite=True), json_values(finite=True)),
        ),
        min_size=5,
        max_size=12,
    )
)
def test_no_inbound_record_blocks_the_topic_or_vanishes(stack, open_episode_id, batch):
    """Any data under any inbound type, on one partition: each record the rules
    refuse is dead-lettered with a reason, and a valid event sent after them all is
    still applied (nothing stuck, nothing crashed)."""
    episode_id = open_episode_id
    events = [
        CloudEvent.new(
            type=event_type,
            source="county/NC-063",
            subject=episode_id,
            data=data if isinstance(data, dict) else {"value": data},
            time=now(),
        )
        for event_type, data in batch
    ]
    sentinel = CloudEvent.new(
        type=EventType.EPISODE_UPDATED,
        source="county/NC-063",
        subject=episode_id,
        data={"note": f"sentinel {uuid4()}"},
        time=now(),
    )
    send(stack, topics.INBOUND, episode_id, *events, sentinel)
    for attempt in eventually(60):
        with attempt:
            timeline = api.get(
                f"{stack.url('intake')}/v1/episodes/{episode_id}", timeout=10
            ).json()["timeline"]
            notes = [t["data"].get("note") for t in timeline]
            assert sentinel.data["note"] in notes
    for event in events:
        model = INBOUND_DATA[event.type]
        routing = (
            ROUTING_KEYS - model.model_fields.keys()
            if model in LATER_EVENTS.values()
            else set()
        )
        data = {k: v for k, v in event.data.items() if k not in routing}
        try:
            model.model_validate(data)
        except ValidationError:
            assert dead_letter_reason(stack, event.id, episode_id=episode_id)


def test_sigkill_mid_stream_loses_and_duplicates_nothing(stack):
    reports = [make_report(county_code="TX-201") for _ in range(60)]
    accepted: dict[str, str] = {}
    refused_while_down: list[str] = []

    def send_until_answered(report: dict[str, Any]) -> None:
        # What a county system does: retry the same report until it gets an answer.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = post(stack, "/v1/episodes", report)
            except httpx.TransportError:
                refused_while_down.append(report["case_id"])
                time.sleep(0.2)
                continue
            if answer.status_code in (200, 201):
                accepted[report["case_id"]] = answer.json()["id"]
                return
            time.sleep(0.2)
        raise AssertionError(f"{report['case_id']} never accepted")

    intake = stack.services["intake"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(send_until_answered, r) for r in reports]
        while len(accepted) < 15:
            time.sleep(0.05)
        intake.kill()
        time.sleep(0.5)
        intake.start()
        for future in futures:
            future.result()
    stack.services.wait_ready(timeout=60)

    assert refused_while_down, "the kill must have happened mid-stream"
    assert len(accepted) == 60
    assert len(set(accepted.values())) == 60
    for attempt in eventually(60):
        with attempt:
            reported = [
                e
                for e in audit_entries(
                    stack, type=EventType.EPISODE_REPORTED, county="TX-201", limit=1000
                )
                if e["topic"] == topics.EPISODES
                and e["event"]["data"]["case_id"] in accepted
            ]
            assert len(reported) >= 60
    per_case: dict[str, list[str]] = {}
    for entry in reported:
        per_case.setdefault(entry["event"]["data"]["case_id"], []).append(
            entry["episode_id"]
        )
    assert dict(per_case.items()) == {
        case: [episode_id] for case, episode_id in accepted.items()
    }


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_intake_counts_what_it_does(stack):
    metrics = f"{stack.url('intake')}/metrics"
    before = api.get(metrics, timeout=5).text
    report = make_report()
    post(stack, "/v1/episodes", report)
    post(stack, "/v1/episodes", report)
    post(
        stack, "/v1/episodes", make_report(county_code="MO-510", child={"sex": "robot"})
    )
    post(stack, "/v1/episodes", make_report(county_code="WA-033"))  # not served here
    after = api.get(metrics, timeout=5).text

    def grew(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert grew("mfc_intake_reports_accepted_total") == 1
    assert grew("mfc_intake_duplicates_total", type="reported") == 1
    assert grew("mfc_intake_rejected_total", reason="county_code") == 1
    assert grew("mfc_intake_rejected_total", reason="child") == 1  # schema refusal
    assert (
        grew("mfc_http_request_seconds_count", route="/v1/episodes", status="422") == 2
    )
    assert (
        grew("mfc_http_request_seconds_count", route="/v1/episodes", status="201") == 1
    )


def test_the_episode_shows_its_deadlines_and_prompts(stack):
    """SPEC 4.1: the answer to a report lists the open obligations with due times;
    4.2: the episode shows its obligations and prompts as the other services keep
    them (here North Carolina's, from the shipped policy)."""
    report = make_report(county_code="NC-063")
    answer = post(stack, "/v1/episodes", report)
    assert answer.status_code == 201, answer.text
    learned = datetime.fromisoformat(report["agency_learned_at"])
    expected = {o["kind"]: o for o in answer.json()["obligations"]}
    assert {k: datetime.fromisoformat(o["due_at"]) for k, o in expected.items()} == {
        "law_enforcement_report": learned + timedelta(hours=2),
        "law_enforcement_written_report": learned + timedelta(hours=48),
        "ncmec_report": learned + timedelta(hours=24),
    }
    assert all(o["status"] == "open" for o in expected.values())
    episode_id = answer.json()["id"]

    for attempt in eventually(30):
        with attempt:
            episode = api.get(
                f"{stack.url('intake')}/v1/episodes/{episode_id}", timeout=10
            ).json()
            opened = {o["kind"]: o for o in episode["obligations"]}
            assert opened.keys() == expected.keys()
            assert all(o["obligation_id"] for o in opened.values())
            kinds = {p["kind"] for p in episode["prompts"]}
            assert "provide_missing_report_items" in kinds  # trafficking unknown
    for kind, obligation in opened.items():  # what the notifier opened: the same
        due = datetime.fromisoformat(obligation["due_at"])
        assert due == datetime.fromisoformat(expected[kind]["due_at"])

    # A notice recorded: the notifier satisfies the obligation, and the episode says
    # so. (Law enforcement first: North Carolina's NCMEC report must carry the
    # law-enforcement report number, so a NCMEC notice before it would wait.)
    notice = post(
        stack,
        f"/v1/episodes/{episode_id}/notifications",
        {
            "recipient": "law_enforcement",
            "method": "phone",
            "notified_at": now().isoformat(),
            "reference_number": "DPD-1",
            "notified_by": "cw-1",
        },
    )
    assert notice.status_code == 201, notice.text
    for attempt in eventually(30):
        with attempt:
            episode = api.get(
                f"{stack.url('intake')}/v1/episodes/{episode_id}", timeout=10
            ).json()
            status = {o["kind"]: o["status"] for o in episode["obligations"]}
            assert status["law_enforcement_report"] == "satisfied"
            assert status["ncmec_report"] == "open"


def test_a_business_day_deadline_is_the_same_in_the_answer_and_the_notifier(stack):
    """Georgia's runaway report to the juvenile court is due in two business days:
    at the end of a working day in Atlanta, at least two days after the report, and
    the notifier opens it with the due time intake answered."""
    report = make_report(county_code="GA-121")
    answer = post(stack, "/v1/episodes", report)
    assert answer.status_code == 201, answer.text
    learned = datetime.fromisoformat(report["agency_learned_at"])
    court = next(
        o for o in answer.json()["obligations"] if o["kind"] == "court_runaway_report"
    )
    due = datetime.fromisoformat(court["due_at"]).astimezone(
        ZoneInfo("America/New_York")
    )
    assert (due.hour, due.minute, due.weekday() < 5) == (17, 0, True)
    assert due.date() >= learned.astimezone(due.tzinfo).date() + timedelta(days=2)

    for attempt in eventually(30):
        with attempt:
            episode = api.get(
                f"{stack.url('intake')}/v1/episodes/{answer.json()['id']}", timeout=10
            ).json()
            opened = [
                o for o in episode["obligations"] if o["kind"] == "court_runaway_report"
            ]
            assert len(opened) == 1
    assert datetime.fromisoformat(opened[0]["due_at"]) == due


def test_a_person_records_a_notice_they_gave_as_themselves(stack):
    """The console's "record a notice given": a caseworker or on-call person records
    the call they made; ``notified_by`` is their sign-in (the token's subject), and
    the notice satisfies the duty like a county system's."""
    episode_id = open_episode(stack, county_code="NC-063")["id"]
    path = f"/v1/episodes/{episode_id}/notifications"
    oncall = api.bearer("oncall", counties=["NC-063"], subject="oncall-7")
    notice = {
        "recipient": "law_enforcement",
        "method": "phone",
        "notified_at": now().isoformat(),
        "reference_number": "24-118833",
        "agency": "Durham Police Department",
    }

    forged = post(stack, path, {**notice, "notified_by": "cw-1"}, **oncall)
    assert forged.status_code == 422, forged.text
    [problem] = forged.json()["detail"]
    assert problem["loc"] == ["body", "notified_by"]
    assert problem["msg"].startswith("set from your sign-in")
    county = api.bearer("county_system", counties=["NC-063"])
    unnamed = post(stack, path, notice, **county)  # a county system names its staff
    assert unnamed.status_code == 422, unnamed.text
    assert [p["loc"] for p in unnamed.json()["detail"]] == [["body", "notified_by"]]
    assert [
        t["type"]
        for t in api.get(f"{stack.url('intake')}/v1/episodes/{episode_id}").json()[
            "timeline"
        ]
    ] == [EventType.EPISODE_REPORTED]  # nothing recorded by either

    recorded = post(stack, path, notice, **oncall)
    assert recorded.status_code == 201, recorded.text
    again = post(stack, path, {**notice, "notified_by": "oncall-7"}, **oncall)
    assert again.status_code == 200, "their own id is the same notice"
    timeline = api.get(f"{stack.url('intake')}/v1/episodes/{episode_id}").json()[
        "timeline"
    ]
    assert [t["data"].get("notified_by") for t in timeline[1:]] == ["oncall-7"]
    caseworker = api.bearer("caseworker", counties=["NC-063"], subject="cw-1")
    by_caseworker = post(
        stack,
        path,
        {**notice, "recipient": "ncmec", "notified_by": "cw-1"},
        **caseworker,
    )
    assert by_caseworker.status_code == 201, by_caseworker.text

    for attempt in eventually(30):
        with attempt:
            episode = api.get(
                f"{stack.url('intake')}/v1/episodes/{episode_id}", timeout=10
            ).json()
            status = {o["kind"]: o["status"] for o in episode["obligations"]}
            assert status.get("law_enforcement_report") == "satisfied"
            assert status.get("ncmec_report") == "satisfied"
            assert status.get("law_enforcement_written_report") == "open"  # by phone
            recorded_by = {
                e["event"]["data"]["recipient"]: e["event"]["data"]["notified_by"]
                for e in audit_entries(
                    stack, episode_id=episode_id, type=EventType.NOTIFICATION_RECORDED
                )
            }
            assert recorded_by == {"law_enforcement": "oncall-7", "ncmec": "cw-1"}


def test_a_misspelled_field_is_refused_by_name_not_dropped(stack):
    """A county that misspells ``photo_url`` or ``endangerments`` learns it at once,
    over HTTP and over Kafka, instead of believing it told us."""
    since = {"from": (now() - timedelta(seconds=5)).isoformat()}
    report = make_report()
    report["child"]["photo_ulr"] = "https://photos.example.org/p/2.jpg"
    report["endangerment"] = {"pregnant": True}
    answer = post(stack, "/v1/episodes", report)
    assert answer.status_code == 422, answer.text
    problems = {tuple(p["loc"]): p["msg"] for p in answer.json()["detail"]}
    assert "did you mean 'photo_url'?" in problems[("body", "child", "photo_ulr")]
    assert "did you mean 'endangerments'?" in problems[("body", "endangerment")]

    episode = open_episode(stack)
    update = post(
        stack,
        f"/v1/episodes/{episode['id']}/updates",
        {"endangerments": {"pregnent": True}},
    )
    assert update.status_code == 422, update.text
    assert [p["loc"] for p in update.json()["detail"]] == [
        ["body", "endangerments", "pregnent"]
    ]

    inbound = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=None,
        data=report,
        time=now(),
    )
    later = CloudEvent.new(  # routing keys in data are fine; the typo is not
        type=EventType.EPISODE_UPDATED,
        source="county/NC-063",
        subject=None,
        data={
            "episode_id": episode["id"],
            "child": {"hair_colour": "red"},
        },
        time=now(),
    )
    send(stack, topics.INBOUND, report["case_id"], inbound, later)
    reason = dead_letter_reason(stack, inbound.id, **since)
    assert "data.child.photo_ulr: unknown field" in reason
    assert "data.endangerment: unknown field" in reason
    reason = dead_letter_reason(stack, later.id, **since)
    assert "data.child.hair_colour" in reason
    assert "did you mean 'hair_color'?" in reason


def test_a_nul_character_in_a_text_is_refused_not_a_server_error(stack):
    """PostgreSQL stores no NUL: the API fuzzing found intake answering 500 to a
    report with one. Now a 422 names where it is, and on Kafka a dead letter."""
    since = {"from": (now() - timedelta(seconds=5)).isoformat()}
    report = make_report()
    report["child"]["first_name"] = "Ma\u0000risol"
    answer = post(stack, "/v1/episodes", report)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "child", "first_name"]
    assert "NUL character" in problem["msg"]
    assert "Ma" not in answer.text  # the value is not repeated

    inbound = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=None,
        data=report,
        time=now(),
    )
    send(stack, topics.INBOUND, report["case_id"], inbound)
    # Refused as it is read, like any message that cannot be stored: found by key.
    for attempt in eventually():
        with attempt:
            letters = [
                e["event"]["data"]
                for e in audit_entries(
                    stack, type=EventType.DEADLETTER_RECORDED, limit=1000, **since
                )
                if e["event"]["data"]["original_key"] == report["case_id"]
            ]
            assert len(letters) == 1
    [letter] = letters
    assert letter["consumer"] == "intake-inbound"
    assert "data.child.first_name: holds a NUL character" in letter["reason"]


def test_a_county_keeps_its_own_data_in_extensions(stack):
    """Room for a county's own fields: kept with the report and its update, in the
    canonical events the trail holds, not dropped; personal to auditors (it may
    name the child or their family), like the child's name."""
    episode = open_episode(stack, extensions={"placement_code": "FH-7"})
    updated = post(
        stack,
        f"/v1/episodes/{episode['id']}/updates",
        {"extensions": {"sighting_ref": "S-19"}, "note": "seen at the mall"},
    )
    assert updated.status_code == 201, updated.text
    pii = api.bearer("auditor", "auditor_pii")

    def extensions(headers=None) -> dict[str, Any]:
        answer = api.get(
            f"{stack.url('audit')}/v1/audit/entries",
            params={"episode_id": episode["id"]},
            headers=headers or {},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return {
            e["type"]: e["event"]["data"]["extensions"]
            for e in answer.json()["entries"]
            if e["topic"] == topics.EPISODES
            and e["type"] in (EventType.EPISODE_REPORTED, EventType.EPISODE_UPDATED)
        }

    for attempt in eventually():
        with attempt:
            assert extensions(pii) == {
                EventType.EPISODE_REPORTED: {"placement_code": "FH-7"},
                EventType.EPISODE_UPDATED: {"sighting_ref": "S-19"},
            }
    assert set(extensions().values()) == {"[redacted]"}


def test_a_body_or_message_over_the_bound_is_refused_with_the_limit(stack):
    """A 50 MB report used to be read and accepted; now a few hundred kB is the
    bound (INTAKE_MAX_MESSAGE_BYTES), over HTTP and on Kafka."""
    since = {"from": (now() - timedelta(seconds=5)).isoformat()}
    report = make_report()
    report["extensions"] = {"padding": "x" * 400_000}
    answer = post(stack, "/v1/episodes", report)
    assert answer.status_code == 413, answer.text
    assert "MAX_MESSAGE_BYTES" in answer.json()["detail"]

    inbound = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=None,
        data=report,
        time=now(),
    )
    send(stack, topics.INBOUND, report["case_id"], inbound)
    for attempt in eventually():
        with attempt:
            letters = [
                e["event"]["data"]
                for e in audit_entries(
                    stack, type=EventType.DEADLETTER_RECORDED, limit=1000, **since
                )
                if e["event"]["data"]["consumer"] == "intake-inbound"
                and e["event"]["data"]["original_key"] == report["case_id"]
            ]
            assert len(letters) == 1
    assert letters[0]["error_type"] == "MessageTooLargeError"
    assert "401," in letters[0]["reason"]  # its size
    assert "262,144" in letters[0]["reason"]  # the bound
