"""Faults under load: nothing is lost, nothing happens twice.

A load of county systems reports children over HTTP, retrying with the same
Idempotency-Key whenever an answer does not come, as a county system does. Meanwhile one
fault strikes:
- each service in turn is SIGKILLed and restarted;
- the broker is frozen (SIGSTOP) for 20 s, then resumed;
- PostgreSQL is restarted;
- every inbound Kafka event arrives three times.

Then the invariant checker proves, from the databases and the APIs:
- every accepted report has exactly one episode;
- each episode has exactly the obligations its policy demands (the ones intake's
  answer named);
- every event the services published is in the audit log exactly once, and audit
  verification passes;
- no alert step was raised twice, and no delivery arrived twice except as an
  identical resend after a crash (the receiver dedupes on X-MFC-Delivery);
- nothing is stuck in an outbox or a delivery queue.

The stack is its own (embedded PostgreSQL and Tansu, the four services as processes)
with the policy in seconds, so alerts fire during the test.
"""

import asyncio
import json
import os
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition

from devtools.devstack import (
    SERVICE_NAMES,
    EmbeddedInfrastructure,
    Infrastructure,
    ServiceSet,
    local_stack,
)
from shared import topics
from shared.delivery import BATCH_SIZE as DELIVERY_BATCH
from shared.events import CloudEvent, EventType
from tests import api
from tests.conftest import BACKENDS, make_report
from tests.e2e.fast import FAST_POLICY, SECRET
from tests.e2e.test_walking_skeleton import eventually
from tests.kafka_helpers import end_offsets, produce, read_all
from tests.receivers import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.skipif(
    "embedded" not in BACKENDS, reason="the fault tests run on the embedded backend"
)

COUNTY = "KY-111"  # the county the fast policy has rules for


def bounded_policy(directory: Path) -> Path:
    """The fast policy, with repeats an hour apart instead of two seconds.

    Every alert and prompt step still fires within seconds, but each episode raises a
    fixed number of them: with repeats every two seconds, the episodes of the earlier
    tests would keep the services busy for ever, and "nothing left in an outbox"
    could never be observed.
    """
    text = FAST_POLICY.read_text()
    for old, new in (
        ('breach_repeat = "2s"', 'breach_repeat = "1h"'),
        ('every = "2s"', 'every = "1h"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "faults_policy.toml"
    path.write_text(text)
    return path


class FaultStack:
    def __init__(
        self,
        embedded: EmbeddedInfrastructure,
        infra: Infrastructure,
        services: ServiceSet,
        webhook: WebhookReceiver,
        policy: Path,
    ) -> None:
        self.policy = policy
        # Deliveries that may legitimately arrive twice: a crash between sending
        # and recording resends the same delivery (same X-MFC-Delivery, same body)
        # to the receiver, which dedupes on the key (docs/notifier.md). At most one
        # batch per worker in flight at each crash; each crashing test adds its
        # share.
        self.resends_allowed = 0
        self.embedded = embedded
        self.infra = infra
        self.services = services
        self.webhook = webhook
        # Where the services' topics ended when the current load began.
        self.published_from: dict[TopicPartition, int] = {}

    def url(self, service: str) -> str:
        return self.services[service].url

    def restart(self, service: str, *, kill: bool) -> None:
        process = self.services[service]
        if kill:
            process.kill()
        else:
            process.stop()
        process.start()
        deadline = time.monotonic() + 60
        while not process.ready():
            assert process.alive(), f"{service} exited after its restart"
            assert time.monotonic() < deadline, f"{service} not ready after restart"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    root = tmp_path_factory.mktemp("faults")
    with webhook_receiver() as webhook:
        env = dict(os.environ)
        policy = bounded_policy(root)
        for prefix in ("INTAKE", "NOTIFIER", "FOLLOWUP"):
            env[f"{prefix}_POLICY_PATH"] = str(policy)
        for prefix in ("NOTIFIER", "FOLLOWUP"):
            env[f"{prefix}_WEBHOOK_URL"] = webhook.url
            env[f"{prefix}_WEBHOOK_SECRET"] = SECRET
            env[f"{prefix}_TIMER_POLL_INTERVAL"] = "200ms"
            env[f"{prefix}_DELIVERY_INITIAL_BACKOFF"] = "200ms"
            env[f"{prefix}_DELIVERY_MAX_ATTEMPTS"] = "20"
        env["INTAKE_COUNTIES"] = COUNTY
        for prefix in (s.upper() for s in SERVICE_NAMES):
            env[f"{prefix}_SHUTDOWN_GRACE"] = "2s"
            env[f"{prefix}_HANDLER_MAX_BACKOFF"] = "2s"
        # Always embedded: the tests pause the broker and restart the database.
        with local_stack(root, env, infra_env={}, ready_timeout=90) as local:
            yield FaultStack(
                local.embedded, local.infra, local.services, webhook, policy
            )


class Load:
    """County systems reporting at a steady rate. A report counts as accepted once
    intake answered 201 or 200; until then it is sent again with the same
    Idempotency-Key, the way a county system retries."""

    def __init__(self, stack: FaultStack, *, rate: float = 6, workers: int = 3):
        self.stack = stack
        self.interval = workers / rate
        self.workers = workers
        self.accepted: dict[str, dict[str, Any]] = {}  # case_id -> intake's answer
        self.retries = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "Load":
        # What the services publish from here on is what the checker reads back.
        self.stack.published_from = asyncio.run(
            end_offsets(self.stack.infra.bootstrap_servers, topics.OWN)
        )
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)
            assert not thread.is_alive(), "a county system never got its answer"
        assert not self.errors, self.errors

    def _run(self) -> None:
        try:
            with httpx.Client(headers=api.ADMIN, timeout=10) as client:
                while not self._stop.is_set():
                    started = time.monotonic()
                    self._report(client)
                    elapsed = time.monotonic() - started
                    self._stop.wait(max(0.0, self.interval - elapsed))
        except BaseException as exc:  # reported by __exit__
            self.errors.append(exc)

    def _report(self, client: httpx.Client) -> None:
        now = datetime.now(UTC)
        body = make_report(
            county_code=COUNTY,
            last_seen_at=(now - timedelta(minutes=2)).isoformat(),
            discovered_at=(now - timedelta(minutes=1)).isoformat(),
            agency_learned_at=now.isoformat(),
        )
        key = uuid4().hex
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            try:
                answer = client.post(
                    f"{self.stack.url('intake')}/v1/episodes",
                    json=body,
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code in (200, 201):
                with self._lock:
                    self.accepted[body["case_id"]] = answer.json()
                return
            assert answer is None or answer.status_code >= 500, answer.text
            with self._lock:
                self.retries += 1
            time.sleep(0.5)
        raise AssertionError(f"report {body['case_id']} never accepted")


async def _check(stack: FaultStack, accepted: dict[str, dict[str, Any]]) -> None:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        # Every accepted report has exactly one episode: the one intake answered.
        rows = await conn.fetch(
            "SELECT case_id, array_agg(id) AS ids FROM intake.episodes"
            " WHERE case_id = ANY($1::text[]) GROUP BY case_id",
            list(accepted),
        )
        episodes = {r["case_id"]: [str(i) for i in r["ids"]] for r in rows}
        assert set(episodes) == set(accepted)
        for case_id, answer in accepted.items():
            assert episodes[case_id] == [answer["id"]], case_id

        # Each has exactly the obligations its policy demands.
        rows = await conn.fetch(
            "SELECT episode_id, array_agg(kind ORDER BY kind) AS kinds"
            " FROM notifier.obligations WHERE episode_id = ANY($1::uuid[])"
            " GROUP BY episode_id",
            [a["id"] for a in accepted.values()],
        )
        kinds = {str(r["episode_id"]): list(r["kinds"]) for r in rows}
        for answer in accepted.values():
            expected = sorted(o["kind"] for o in answer["obligations"])
            assert expected, "the fast policy opens obligations for KY-111"
            assert kinds.get(answer["id"]) == expected, answer["id"]

        # Nothing stuck in an outbox (a published row leaves it). Every event the
        # services published, read back from the broker, is in the audit log, and
        # so is every event intake recorded, every obligation the notifier opened
        # and every prompt followup issued (what they made, whether or not the
        # broker has it); none twice.
        for schema in ("intake", "notifier", "followup"):
            stuck = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
            assert stuck == 0, f"{schema}: {stuck} events not published"
        published = await read_all(
            stack.infra.bootstrap_servers, topics.OWN, since=stack.published_from
        )
        assert published, "the services published events"
        missing = await conn.fetch(
            "SELECT i FROM unnest($1::text[]) AS i WHERE NOT EXISTS"
            " (SELECT 1 FROM audit.log_entries l WHERE l.event_id = i)",
            list({json.loads(r.value)["id"] for r in published}),
        )
        assert not missing, f"published, not in the audit log: {missing[:5]}"
        missing = await conn.fetch(
            "SELECT t.event_id FROM intake.timeline t"
            " LEFT JOIN audit.log_entries l ON l.event_id = t.event_id"
            " WHERE l.event_id IS NULL"
        )
        assert not missing, f"recorded by intake, not in the audit log: {missing[:5]}"
        missing = await conn.fetch(
            "SELECT o.id FROM notifier.obligations o WHERE NOT EXISTS"
            " (SELECT 1 FROM audit.log_entries l"
            "  WHERE l.type = 'mfc.obligation.opened'"
            "  AND l.event -> 'data' ->> 'obligation_id' = o.id::text)"
        )
        assert not missing, f"opened, not in the audit log: {missing[:5]}"
        missing = await conn.fetch(
            "SELECT p.id FROM followup.prompts p WHERE NOT EXISTS"
            " (SELECT 1 FROM audit.log_entries l"
            "  WHERE l.type = 'mfc.prompt.issued'"
            "  AND l.event -> 'data' ->> 'prompt_id' = p.id::text)"
        )
        assert not missing, f"prompt issued, not in the audit log: {missing[:5]}"
        twice = await conn.fetch(
            "SELECT event_id FROM audit.log_entries GROUP BY event_id HAVING count(*) > 1"
        )
        assert not twice

        # No alert step raised twice; no delivery left behind.
        repeated = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM notifier.alerts"
            " GROUP BY obligation_id, step_key HAVING count(*) > 1) t"
        )
        assert repeated == 0
        for schema in ("notifier", "followup"):
            pending = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.deliveries WHERE status = 'pending'"
                " AND next_attempt_at < now() - interval '20 seconds'"
            )
            assert pending == 0, f"{schema}: deliveries stuck"
            failed = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.deliveries WHERE status = 'failed'"
            )
            assert failed == 0, f"{schema}: deliveries given up"
    finally:
        await conn.close()

    # No delivery arrived twice (X-MFC-Delivery is one alert to one address), except
    # as an identical resend after a crash, and no more of those than the crashes
    # can explain.
    with stack.webhook.lock:
        copies: dict[str, list[bytes]] = {}
        for r in stack.webhook.requests:
            if r["status"] == 200:
                copies.setdefault(r["headers"]["X-MFC-Delivery"], []).append(r["body"])
    assert copies, "alerts were delivered during the test"
    resent = {key: bodies for key, bodies in copies.items() if len(bodies) > 1}
    for key, bodies in resent.items():
        assert len(set(bodies)) == 1, f"{key}: different deliveries under one key"
    assert len(resent) <= stack.resends_allowed, list(resent)[:5]

    verified = api.get(f"{stack.url('audit')}/v1/audit/verify", timeout=120).json()
    assert verified["ok"], verified["problems"]


def check_invariants(stack: FaultStack, accepted: dict[str, dict[str, Any]]) -> None:
    assert accepted, "the load reported children"
    for attempt in eventually(120):
        with attempt:
            asyncio.run(_check(stack, accepted))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_killed_under_load_loses_nothing(faults, service):
    if service in ("notifier", "followup"):
        faults.resends_allowed += DELIVERY_BATCH
    with Load(faults) as load:
        time.sleep(4)
        faults.restart(service, kill=True)
        time.sleep(4)
    check_invariants(faults, load.accepted)


def test_a_frozen_broker_under_load_loses_nothing(faults):
    assert faults.embedded.kafka is not None
    with Load(faults) as load:
        time.sleep(3)
        faults.embedded.kafka.pause()
        try:
            time.sleep(20)
        finally:
            faults.embedded.kafka.resume()
        time.sleep(5)
    check_invariants(faults, load.accepted)


def test_every_inbound_event_delivered_three_times_counts_once(faults):
    reports = []
    messages = []
    now = datetime.now(UTC)
    for _ in range(20):
        report = make_report(
            county_code=COUNTY,
            last_seen_at=(now - timedelta(minutes=2)).isoformat(),
            discovered_at=(now - timedelta(minutes=1)).isoformat(),
            agency_learned_at=now.isoformat(),
        )
        event = CloudEvent.new(
            type=EventType.EPISODE_REPORTED,
            source=f"county/{COUNTY}",
            subject=report["case_id"],
            data=report,
            time=now,
        )
        reports.append(report)
        messages.append((report["case_id"].encode(), event.to_bytes()))
    # Three times each: in order, then all again, then all again in reverse.
    asyncio.run(
        produce(
            faults.infra.bootstrap_servers,
            topics.INBOUND,
            *messages,
            *messages,
            *reversed(messages),
        )
    )
    for attempt in eventually(60):
        with attempt:
            ids = asyncio.run(episode_ids(faults, [r["case_id"] for r in reports]))
            assert set(ids) == {r["case_id"] for r in reports}
    # What the policy demands of a KY-111 report, read from the policy file itself.
    policy = tomllib.loads(faults.policy.read_text())
    demanded = [
        {"kind": rule["id"]}
        for rule in policy["jurisdictions"][COUNTY]["obligations"]
        if rule["opens_on"] == "reported"
    ]
    accepted = {
        case_id: {"id": episode_id, "obligations": demanded}
        for case_id, episode_id in ids.items()
    }
    check_invariants(faults, accepted)


async def episode_ids(stack: FaultStack, case_ids: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        rows = await conn.fetch(
            "SELECT case_id, id FROM intake.episodes WHERE case_id = ANY($1::text[])",
            case_ids,
        )
    finally:
        await conn.close()
    return {r["case_id"]: str(r["id"]) for r in rows}


def test_the_checker_catches_a_lost_report(faults):
    """The checker itself can fail: a report it was told about that no episode
    holds is found out."""
    invented = {
        f"case-{uuid4().hex[:12]}": {"id": str(uuid4()), "obligations": [{"kind": "x"}]}
    }
    with pytest.raises(AssertionError):
        asyncio.run(_check(faults, invented))


async def postmaster_started(stack: FaultStack) -> datetime:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        started: datetime = await conn.fetchval("SELECT pg_postmaster_start_time()")
    finally:
        await conn.close()
    return started


# Last in the module: what it finds must not spill into the other tests.
def test_a_database_restart_under_load_loses_nothing(faults):
    before = asyncio.run(postmaster_started(faults))
    faults.resends_allowed += 2 * DELIVERY_BATCH  # the notifier's and followup's
    with Load(faults) as load:
        time.sleep(3)
        faults.embedded.restart_postgres()
        time.sleep(8)
    assert asyncio.run(postmaster_started(faults)) > before, "PostgreSQL restarted"
    for name in SERVICE_NAMES:
        assert faults.services[name].alive(), f"{name} died with the database"
    check_invariants(faults, load.accepted)
