"""Who may do what, on the running system: every endpoint of the four services, for
every role, against the caller's own county and another county.

Two episodes are reported, one in each county, and followed until both have
obligations, alerts, prompts and audit entries. A notifier and a followup with a
policy in seconds (rules for both counties) make the alerts and prompts. Then each
row of the table is one request with a token of one role scoped to county A.

The expected answer: 401 without a token; 403 when the role may not use the
endpoint; for another county's data, 404 (ids) or an empty answer (searches), never
the data and never a 403 that would confirm the id exists; otherwise an answer
(``ok``: 2xx, or 409 when the episode's state refused a change the caller was
allowed to ask for).
"""

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import topics
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import make_report
from tests.e2e.fast import FAST_POLICY, FastService
from tests.e2e.test_intake import dead_letter_reason
from tests.e2e.test_walking_skeleton import eventually
from tests.kafka_helpers import produce
from tests.receivers import smtp_receiver, webhook_receiver

OWN, OTHER = "KY-111", "TX-201"
ROLES = ("county_system", "caseworker", "oncall", "auditor", "auditor_pii", "admin")
SENDER = {"county_system"}
READER = {"county_system", "caseworker", "oncall"}
STAFF = {"caseworker", "oncall"}
NOTICE = SENDER | STAFF
"""Notices: county systems name who gave one; a person records their own."""
AUDITOR = {"auditor", "auditor_pii"}


def now() -> str:
    return datetime.now(UTC).isoformat()


def two_county_policy(tmp: Path) -> Path:
    """The fast test policy, its KY-111 rules copied for TX-201."""
    text = FAST_POLICY.read_text()
    ky = text[text.index('[jurisdictions."KY-111"]') :]
    path = tmp / "two_county_policy.toml"
    path.write_text(text + "\n" + ky.replace('"KY-111"', f'"{OTHER}"'))
    return path


@dataclass
class World:
    stack: Any
    notifier: FastService
    followup: FastService
    episodes: dict[str, str]
    alerts: dict[str, str]
    prompts: dict[str, str]
    audit_seq: dict[str, int]

    def url(self, service: str) -> str:
        if service == "notifier":
            return self.notifier.url
        if service == "followup":
            return self.followup.url
        return str(self.stack.url(service))


@pytest.fixture(scope="module")
def world(stack, tmp_path_factory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("access")
    policy = two_county_policy(tmp)
    with webhook_receiver() as webhook, smtp_receiver() as smtp:
        services = []
        for name in ("notifier", "followup"):
            service = FastService(name, stack, webhook, smtp, tmp)
            service.overrides[f"{name.upper()}_POLICY_PATH"] = str(policy)
            service.add_replica()
            services.append(service)
        notifier, followup = services
        try:
            episodes = {county: report(stack, county) for county in (OWN, OTHER)}
            world = World(stack, notifier, followup, episodes, {}, {}, {})
            for county, episode_id in episodes.items():
                for attempt in eventually(60):
                    with attempt:
                        alerts = admin_get(
                            world, "notifier", "/v1/alerts", episode_id=episode_id
                        )
                        prompts = admin_get(
                            world,
                            "followup",
                            "/v1/prompts",
                            episode_id=episode_id,
                            status="open",
                        )
                        entries = admin_get(
                            world, "audit", "/v1/audit/entries", episode_id=episode_id
                        )["entries"]
                        assert alerts
                        assert prompts
                        sent = [e for e in entries if e["type"] == "mfc.alert.sent"]
                        assert sent, "an alert entry: its event names no county"
                        assert "mfc.episode.reported" in {e["type"] for e in entries}
                world.alerts[county] = alerts[0]["id"]
                world.prompts[county] = prompts[0]["id"]
                world.audit_seq[county] = sent[0]["seq"]
            yield world
        finally:
            notifier.stop()
            followup.stop()


def report(stack: Any, county: str) -> str:
    learned = datetime.now(UTC)
    body = make_report(
        county_code=county,
        last_seen_at=(learned - timedelta(minutes=2)).isoformat(),
        discovered_at=(learned - timedelta(minutes=1)).isoformat(),
        agency_learned_at=learned.isoformat(),
    )
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def admin_get(world: World, service: str, path: str, **params: Any) -> Any:
    answer = api.get(f"{world.url(service)}{path}", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str
    method: str
    path: Callable[[World, str], str]
    """The path for a target county's data."""
    allowed: frozenset[str]
    """Roles besides admin that may call it."""
    scoped: str
    """How another county's data is answered: "404", "empty" or "none" (the
    endpoint holds no county's data)."""
    body: Callable[[str], dict[str, Any]] | None = None
    params: Callable[[World, str], dict[str, Any]] | None = None
    empty: Callable[[Any], bool] = lambda answer: answer == []


def episode(path: str = "") -> Callable[[World, str], str]:
    return lambda w, county: f"/v1/episodes/{w.episodes[county]}{path}"


def by_episode(w: World, county: str) -> dict[str, Any]:
    return {"episode_id": w.episodes[county]}


ENDPOINTS = [
    Endpoint(
        "report",
        "intake",
        "POST",
        lambda _w, _c: "/v1/episodes",
        frozenset(SENDER),
        "403",
        body=lambda county: make_report(county_code=county),
    ),
    Endpoint(
        "updates",
        "intake",
        "POST",
        episode("/updates"),
        frozenset(SENDER),
        "404",
        body=lambda _c: {"note": "access check", "updated_by": "cw-1"},
    ),
    Endpoint(
        "notifications",
        "intake",
        "POST",
        episode("/notifications"),
        frozenset(NOTICE),
        "404",
        body=lambda _c: {
            "recipient": "law_enforcement",
            "method": "phone",
            "notified_at": now(),
            "reference_number": "LE-1",
            # Every token of the table has this subject: a person may name only
            # themselves (tests/e2e/test_intake.py has the refusals).
            "notified_by": "test-user",
        },
    ),
    Endpoint(
        "located",
        "intake",
        "POST",
        episode("/located"),
        frozenset(SENDER),
        "404",
        body=lambda _c: {"located_at": now(), "location_type": "shelter"},
    ),
    Endpoint(
        "screening",
        "intake",
        "POST",
        episode("/screening"),
        frozenset(SENDER),
        "404",
        body=lambda _c: {
            "completed_at": now(),
            "trafficking_indicated": False,
            "screened_by": "cw-1",
        },
    ),
    Endpoint(
        "close",
        "intake",
        "POST",
        episode("/close"),
        frozenset(SENDER),
        "404",
        body=lambda _c: {"closed_at": now(), "reason": "returned", "closed_by": "sv-1"},
    ),
    Endpoint(
        "heartbeat",
        "intake",
        "POST",
        lambda _w, _c: "/v1/heartbeats",
        frozenset(SENDER),
        "403",
        body=lambda county: {"county_code": county},
    ),
    Endpoint("episode", "intake", "GET", episode(), frozenset(READER), "404"),
    Endpoint(
        "episodes",
        "intake",
        "GET",
        lambda _w, _c: "/v1/episodes",
        frozenset(READER),
        "empty",
        params=lambda _w, county: {"county": county},
        empty=lambda answer: answer["episodes"] == [],
    ),
    Endpoint(
        "ack",
        "notifier",
        "POST",
        lambda w, county: f"/v1/alerts/{w.alerts[county]}/ack",
        frozenset(STAFF),
        "404",
        body=lambda _c: {"note": "access check"},
    ),
    Endpoint(
        "alert",
        "notifier",
        "GET",
        lambda w, county: f"/v1/alerts/{w.alerts[county]}",
        frozenset(STAFF),
        "404",
    ),
    Endpoint(
        "obligations",
        "notifier",
        "GET",
        lambda _w, _c: "/v1/obligations",
        frozenset(STAFF),
        "empty",
        params=by_episode,
    ),
    Endpoint(
        "alerts",
        "notifier",
        "GET",
        lambda _w, _c: "/v1/alerts",
        frozenset(STAFF),
        "empty",
        params=by_episode,
    ),
    Endpoint(
        "schedules",
        "notifier",
        "GET",
        lambda _w, _c: "/v1/schedules",
        frozenset(STAFF),
        "none",
    ),
    Endpoint(
        "schedule",
        "notifier",
        "GET",
        lambda _w, _c: "/v1/schedules/managers",
        frozenset(STAFF),
        "none",
    ),
    Endpoint(
        "schedule calendar",
        "notifier",
        "GET",
        lambda _w, _c: "/v1/schedules/managers/calendar.ics",
        frozenset(STAFF),
        "none",
    ),
    Endpoint(
        "complete",
        "followup",
        "POST",
        lambda w, county: f"/v1/prompts/{w.prompts[county]}/complete",
        frozenset({"caseworker"}),
        "404",
        body=lambda _c: {"note": "done"},
    ),
    Endpoint(
        "prompts",
        "followup",
        "GET",
        lambda _w, _c: "/v1/prompts",
        frozenset(STAFF),
        "empty",
        params=by_episode,
    ),
    Endpoint(
        "entries",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/entries",
        frozenset(AUDITOR),
        "empty",
        params=by_episode,
        empty=lambda answer: answer["entries"] == [],
    ),
    Endpoint(
        "entries by county",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/entries",
        frozenset(AUDITOR),
        "empty",
        params=lambda _w, county: {"county": county},
        empty=lambda answer: answer["entries"] == [],
    ),
    Endpoint(
        "trail",
        "audit",
        "GET",
        lambda w, county: f"/v1/audit/episodes/{w.episodes[county]}/trail",
        frozenset(AUDITOR),
        "404",
    ),
    Endpoint(
        "proof",
        "audit",
        "GET",
        lambda w, county: f"/v1/audit/proof/{w.audit_seq[county]}",
        frozenset(AUDITOR),
        "404",
        params=lambda w, county: {"tree_size": w.audit_seq[county]},
    ),
    Endpoint(
        "compliance",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/compliance",
        frozenset(AUDITOR),
        "empty",
        params=lambda _w, county: {"county": county},
        empty=lambda answer: answer["episodes"] == [],
    ),
    Endpoint(
        "consistency",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/consistency",
        frozenset(AUDITOR),
        "none",
        params=lambda _w, _c: {"from": 1, "to": 2},
    ),
    Endpoint(
        "checkpoints",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/checkpoints",
        frozenset(AUDITOR),
        "none",
    ),
    Endpoint(
        "public key",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/public-key",
        frozenset(AUDITOR),
        "none",
    ),
    Endpoint(
        "verify",
        "audit",
        "GET",
        lambda _w, _c: "/v1/audit/verify",
        frozenset(AUDITOR),
        "none",
    ),
    Endpoint(
        "sign checkpoint",
        "audit",
        "POST",
        lambda _w, _c: "/v1/audit/checkpoints",
        frozenset(),
        "none",
    ),
]


def expected(endpoint: Endpoint, role: str | None, target: str) -> str:
    if role is None:
        return "401"
    if role != "admin" and role not in endpoint.allowed:
        return "403"
    if target == OTHER and endpoint.scoped != "none":
        return endpoint.scoped
    return "ok"


def call(
    world: World, endpoint: Endpoint, role: str | None, target: str
) -> httpx.Response:
    headers = {} if role is None else api.bearer(role, counties=[OWN])
    return httpx.request(
        endpoint.method,
        world.url(endpoint.service) + endpoint.path(world, target),
        params=endpoint.params(world, target) if endpoint.params else None,
        json=endpoint.body(target) if endpoint.body else None,
        headers=headers,
        timeout=30,
    )


def outcome(endpoint: Endpoint, answer: httpx.Response) -> str:
    if answer.status_code in (401, 403, 404):
        return str(answer.status_code)
    if answer.status_code == 409 or 200 <= answer.status_code < 300:
        if answer.status_code == 200 and endpoint.method == "GET":
            body = answer.json() if "json" in answer.headers["content-type"] else None
            if body is not None and endpoint.empty(body):
                return "empty"
        return "ok"
    return f"unexpected {answer.status_code}: {answer.text[:200]}"


def test_every_endpoint_for_every_role_and_county(world):
    rows = [
        (endpoint, role, target)
        for target in (OTHER, OWN)  # another county's first: nothing may change it
        for endpoint in ENDPOINTS
        for role in (None, *ROLES)
    ]
    wrong = []
    for endpoint, role, target in rows:
        want = expected(endpoint, role, target)
        got = outcome(endpoint, call(world, endpoint, role, target))
        if got != want:
            wrong.append(
                f"{endpoint.name} as {role} on {target}: {got}, expected {want}"
            )
    assert not wrong, "\n".join(wrong)
    assert len(rows) == 2 * len(ENDPOINTS) * (len(ROLES) + 1)


def test_another_countys_data_is_untouched_by_the_table(world):
    """Every change asked of the other county's data was refused: its episode is
    still open with no notice recorded, its alert unacknowledged, its prompt open."""
    episode = admin_get(world, "intake", f"/v1/episodes/{world.episodes[OTHER]}")
    assert episode["status"] == "missing"
    assert [t["type"] for t in episode["timeline"]] == ["mfc.episode.reported"]
    prompt = [
        p
        for p in admin_get(
            world, "followup", "/v1/prompts", episode_id=world.episodes[OTHER]
        )
        if p["id"] == world.prompts[OTHER]
    ]
    assert prompt[0]["status"] != "completed"
    assert prompt[0]["completed_by"] is None
    obligations = admin_get(
        world, "notifier", "/v1/obligations", episode_id=world.episodes[OTHER]
    )
    assert obligations, "the other county's obligations exist"
    assert all(o["snoozed_until"] is None for o in obligations), "no ack quieted them"


def test_unscoped_searches_return_only_the_callers_counties(world):
    token = api.bearer("caseworker", "auditor", counties=[OWN])
    page = httpx.get(
        f"{world.url('intake')}/v1/episodes",
        params={"limit": 500},
        headers=token,
        timeout=10,
    ).json()
    assert page["episodes"]
    assert {e["county_code"] for e in page["episodes"]} == {OWN}
    for service, path in (("notifier", "/v1/obligations"),):
        rows = httpx.get(
            f"{world.url(service)}{path}", headers=token, timeout=10
        ).json()
        assert rows
        assert {r["county_code"] for r in rows} == {OWN}
    for params in ({"limit": 1000}, {"open": "true", "limit": 1000}):
        alerts = httpx.get(
            f"{world.url('notifier')}/v1/alerts",
            params=params,
            headers=token,
            timeout=10,
        ).json()
        episodes = {a["episode_id"] for a in alerts}
        assert world.episodes[OTHER] not in episodes, params
        if "open" not in params:  # the table may have closed the episode since
            assert world.episodes[OWN] in episodes
    entries = httpx.get(
        f"{world.url('audit')}/v1/audit/entries",
        params={"limit": 1000},
        headers=token,
        timeout=10,
    ).json()["entries"]
    assert OWN in {e["county_code"] for e in entries}
    assert {e["county_code"] for e in entries} <= {OWN, None}
    assert world.episodes[OTHER] not in {e["episode_id"] for e in entries}
    trail = httpx.get(
        f"{world.url('audit')}/v1/audit/episodes/{world.episodes[OWN]}/trail",
        headers=token,
        timeout=10,
    ).json()["entries"]
    assert {"mfc.alert.sent", "mfc.prompt.issued"} <= {e["type"] for e in trail}, (
        "alert and prompt events name no county: they are in their episode's"
    )
    for fmt in ("jsonl", "csv"):
        text = httpx.get(
            f"{world.url('audit')}/v1/audit/entries",
            params={"format": fmt},
            headers=token,
            timeout=30,
        ).text
        assert world.episodes[OWN] in text
        assert world.episodes[OTHER] not in text
    compliance = httpx.get(
        f"{world.url('audit')}/v1/audit/compliance", headers=token, timeout=30
    ).json()
    assert {e["county_code"] for e in compliance["episodes"]} == {OWN}


def test_personal_fields_only_for_auditor_pii(world):
    trail = f"{world.url('audit')}/v1/audit/episodes/{world.episodes[OWN]}/trail"
    for role, shown in (("auditor", False), ("admin", False), ("auditor_pii", True)):
        entries = httpx.get(trail, headers=api.bearer(role), timeout=10).json()[
            "entries"
        ]
        reported = next(e for e in entries if e["type"] == "mfc.episode.reported")
        assert reported["redacted"] is not shown, role
        last_name = reported["event"]["data"]["child"]["last_name"]
        assert (last_name == "Testchild") is shown, role


@pytest.mark.parametrize("service", ["intake", "notifier", "followup", "audit"])
def test_bad_tokens_are_refused_by_every_service(world, service):
    path = {
        "intake": "/v1/episodes",
        "notifier": "/v1/obligations",
        "followup": "/v1/prompts",
        "audit": "/v1/audit/entries",
    }[service]
    forged = api.token("admin").rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    bad = {
        "expired": api.token("admin", ttl=timedelta(seconds=-120)),
        "wrong audience": api.token("admin", audience="another-api"),
        "wrong issuer": api.token("admin", issuer="https://elsewhere.invalid"),
        "forged": forged,
        "not a token": "not-a-token",
    }
    for what, token in bad.items():
        answer = httpx.get(
            f"{world.url(service)}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 401, (what, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), what
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert (
            httpx.get(f"{world.url(service)}{open_path}", timeout=10).status_code == 200
        )


def test_kafka_producers_send_only_for_their_counties(stack, world):
    """The Kafka counterpart of county scope: INTAKE_KAFKA_SOURCES maps each source
    to its counties (the dev stack: county/<code> to its own county)."""
    body = make_report(county_code="NC-183")
    cases = {
        "another county's report": (
            "county/NC-063",
            EventType.EPISODE_REPORTED,
            body,
            None,
        ),
        "an unknown producer": (
            "county/ZZ-000",
            EventType.EPISODE_REPORTED,
            make_report(),
            None,
        ),
        "another county's episode": (
            "county/NC-063",
            EventType.EPISODE_UPDATED,
            {"note": "not mine"},
            world.episodes[OWN],
        ),
    }
    reasons = {
        "another county's report": "may not send events for county NC-183",
        "an unknown producer": "is not a producer this deployment knows",
        "another county's episode": f"may not send events for county {OWN}",
    }
    since = datetime.now(UTC).isoformat()
    events = {}
    for what, (source, type_, data, subject) in cases.items():
        events[what] = CloudEvent.new(
            type=type_,
            source=source,
            subject=subject,
            data=data,
            time=datetime.now(UTC),
        )
        asyncio.run(
            produce(
                stack.infra.bootstrap_servers,
                topics.INBOUND,
                (events[what].id.encode(), events[what].to_bytes()),
            )
        )
    for what, event in events.items():
        reason = dead_letter_reason(stack, event.id, **{"from": since})
        assert reasons[what] in reason, what
    notes = admin_get(world, "intake", f"/v1/episodes/{world.episodes[OWN]}")[
        "timeline"
    ]
    assert "not mine" not in str(notes)
