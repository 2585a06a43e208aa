"""No child's personal data where it does not belong: the golden scenario runs with a
child whose name, date of birth, photo URL and endangerments are unique strings, and
then every log line of every service, every metric, every alert (email and webhook),
every error answer and every dead-letter reason is searched for them.

The control: the same values are found where they belong (the audit trail for an
``auditor_pii``), so the search would see them if they leaked.
"""

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from shared import topics
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.e2e.fast import FastService
from tests.e2e.test_intake import dead_letter_reason
from tests.e2e.test_walking_skeleton import eventually
from tests.kafka_helpers import produce
from tests.receivers import (
    SmtpReceiver,
    WebhookReceiver,
    smtp_receiver,
    webhook_receiver,
)

MARK = uuid4().hex[:8]
PERSONAL = {
    "first name": f"Zephyrine{MARK}",
    "last name": f"Quillfeather{MARK}",
    "date of birth": "2011-03-14",
    "photo": f"https://photos.example.org/private/{MARK}.jpg",
    "marks": f"butterfly-tattoo-{MARK}",
    "medication": f"Lithoxamine-{MARK} 300mg",
    "risk factor": f"seizure-disorder-{MARK}",
    "new medication": f"Quetiaprine-{MARK}",
}


def personal_report() -> dict:
    learned = datetime.now(UTC)
    report = make_report(
        county_code="KY-111",  # the fast policy's county: alerts within seconds
        last_seen_at=(learned - timedelta(minutes=2)).isoformat(),
        discovered_at=(learned - timedelta(minutes=1)).isoformat(),
        agency_learned_at=learned.isoformat(),
    )
    report["child"].update(
        first_name=PERSONAL["first name"],
        last_name=PERSONAL["last name"],
        date_of_birth=PERSONAL["date of birth"],
        photo_url=PERSONAL["photo"],
        distinguishing_marks=PERSONAL["marks"],
    )
    report["endangerments"].update(
        pregnant=True,
        suicidal_tendencies=True,
        prescription_medications=[PERSONAL["medication"]],
        other_health_or_risk_factors=[PERSONAL["risk factor"]],
    )
    return report


def leaks(text: str) -> list[str]:
    """The personal values found in ``text`` (the date of birth in any usual form)."""
    found = [name for name, value in PERSONAL.items() if value in text]
    for form in ("03/14/2011", "14.03.2011", "2011-03-14"):
        if form in text and "date of birth" not in found:
            found.append("date of birth")
    return found


@pytest.fixture(scope="module")
def fast_pair(
    stack, tmp_path_factory
) -> Iterator[tuple[list[FastService], WebhookReceiver, SmtpReceiver]]:
    tmp = tmp_path_factory.mktemp("privacy")
    with webhook_receiver() as webhook, smtp_receiver() as smtp:
        services = [
            FastService(name, stack, webhook, smtp, tmp)
            for name in ("notifier", "followup")
        ]
        try:
            for service in services:
                service.add_replica()
            yield services, webhook, smtp
        finally:
            for service in services:
                service.stop()


def test_no_personal_data_in_logs_metrics_alerts_or_errors(stack, fast_pair):
    services, webhook, smtp = fast_pair
    intake = stack.url("intake")
    answers: list[httpx.Response] = []

    def post(path: str, body: dict, **kwargs) -> httpx.Response:
        answer = api.post(f"{intake}{path}", json=body, timeout=10, **kwargs)
        answers.append(answer)
        return answer

    # The golden scenario, with every kind of event.
    created = post("/v1/episodes", personal_report())
    assert created.status_code == 201, created.text
    episode = created.json()["id"]
    for attempt in eventually(60):
        with attempt:
            assert any(episode in json.dumps(p) for p in webhook.payloads())
            assert any(episode in m.as_string() for m in smtp.messages)
    now = datetime.now(UTC).isoformat()
    for path, body in [
        (
            "updates",
            {
                "endangerments": {
                    "prescription_medications": [PERSONAL["new medication"]]
                },
                "note": "new information from the school",
            },
        ),
        (
            "notifications",
            {
                "recipient": "law_enforcement",
                "method": "phone",
                "notified_at": now,
                "reference_number": "LE-1",
                "notified_by": "cw-1",
            },
        ),
        ("located", {"located_at": now, "location_type": "shelter"}),
        (
            "screening",
            {
                "completed_at": now,
                "trafficking_indicated": False,
                "screened_by": "cw-1",
            },
        ),
        ("close", {"closed_at": now, "reason": "returned", "closed_by": "sv-1"}),
    ]:
        assert post(f"/v1/episodes/{episode}/{path}", body).status_code == 201

    # Refusals of requests that carry the personal values.
    invalid = personal_report()
    invalid["child"]["first_name"] = PERSONAL["first name"] * 20  # too long
    invalid["child"]["photo_url"] = PERSONAL["photo"].replace("https", "ftp")
    invalid["child"]["date_of_birth"] = "2011-03-14T99"
    invalid["county_code"] = "KY-999"
    assert post("/v1/episodes", invalid).status_code == 422
    assert post("/v1/episodes", personal_report(), anonymous=True).status_code == 401
    other = personal_report()
    other["county_code"] = "NC-063"
    forbidden = post(
        "/v1/episodes", other, headers=api.bearer("county_system", counties=["KY-111"])
    )
    assert forbidden.status_code == 403
    since = datetime.now(UTC).isoformat()
    refused_events = [
        CloudEvent.new(
            type=EventType.EPISODE_REPORTED,
            source="county/KY-111",
            subject=None,
            data=invalid,
            time=datetime.now(UTC),
        ),
        CloudEvent.new(
            type=EventType.EPISODE_REPORTED,
            source="county/nobody",
            subject=None,
            data=personal_report(),
            time=datetime.now(UTC),
        ),
    ]
    asyncio.run(
        produce(
            stack.infra.bootstrap_servers,
            topics.INBOUND,
            *[(e.id.encode(), e.to_bytes()) for e in refused_events],
        )
    )
    reasons = [
        dead_letter_reason(stack, e.id, **{"from": since}) for e in refused_events
    ]

    # Everything has reached the audit trail: the scenario is over.
    trail = f"{stack.url('audit')}/v1/audit/episodes/{episode}/trail"
    for attempt in eventually(60):
        with attempt:
            types = [e["type"] for e in api.get(trail, timeout=10).json()["entries"]]
            assert "mfc.episode.closed" in types
            assert "mfc.alert.sent" in types

    # The control: the values are there for someone allowed to see them ...
    shown = api.get(trail, headers=api.bearer("auditor_pii"), timeout=10).text
    assert set(leaks(shown)) >= {
        "first name",
        "last name",
        "date of birth",
        "photo",
        "marks",
        "medication",
        "risk factor",
        "new medication",
    }
    # ... and nowhere else.
    places: dict[str, str] = {
        "audit trail as auditor": api.get(
            trail, headers=api.bearer("auditor"), timeout=10
        ).text,
        "alert emails": "\n".join(m.as_string() for m in smtp.messages),
        "webhook alerts": json.dumps(webhook.payloads()),
        "error answers": "\n".join(a.text for a in answers if a.status_code >= 400),
        "dead-letter reasons": "\n".join(reasons),
    }
    processes = [*stack.services.services.values()]
    for service in services:
        processes.extend(service.replicas)
    for process in processes:
        places[f"{process.name} log"] = process.log_path.read_text(errors="replace")
        places[f"{process.name} metrics"] = httpx.get(
            f"{process.url}/metrics", timeout=10
        ).text
    assert all(places.values()), [name for name, text in places.items() if not text]
    found = {name: leaks(text) for name, text in places.items() if leaks(text)}
    assert not found, f"personal data found: {found}"
