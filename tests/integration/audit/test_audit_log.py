"""The audit service on real PostgreSQL and a real broker: events consumed from
Kafka form a verifiable Merkle tree; the database refuses changes by trigger and
by privilege; tampering behind the triggers' back is named by verify, online and
offline."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx
import pytest

from audit.bootstrap import create_app
from audit.config import AuditSettings
from audit.domain import merkle
from devtools.cli import main as mfc
from shared import topics
from shared.events import CloudEvent
from tests import api
from tests.kafka_helpers import produce

TOPIC = topics.PROMPTS
"""Where the test events go. Other consumers on the same broker (the e2e stack's)
may dead-letter them under the same subject, so counts look at this topic only."""


class AuditUnderTest:
    def __init__(self, client: httpx.AsyncClient, settings: AuditSettings) -> None:
        self.client = client
        self.settings = settings

    async def get(self, path: str, **params) -> httpx.Response:
        return await self.client.get(path, params=params)

    async def wait_for(self, subject: str, count: int) -> list[dict]:
        """The subject's entries of the test topic, once there are ``count``."""
        for _ in range(300):
            answer = await self.get("/v1/audit/entries", episode_id=subject, limit=1000)
            entries = [e for e in answer.json()["entries"] if e["topic"] == TOPIC]
            if len(entries) >= count:
                return entries
            await asyncio.sleep(0.1)
        raise AssertionError(f"only {len(entries)} of {count} entries appended")


@pytest.fixture
async def audit(infra, unique, tmp_path) -> AsyncIterator[AuditUnderTest]:
    settings = AuditSettings(
        kafka_bootstrap_servers=infra.bootstrap_servers,
        database_url=infra.database_url,
        db_schema=unique,
        consumer_group=unique,
        http_port=0,
        signing_key_file=tmp_path / "key.pem",
        generate_signing_key=True,
        checkpoint_dir=tmp_path / "checkpoints",
        checkpoint_interval=timedelta(hours=1),
        shutdown_grace=timedelta(seconds=1),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://audit", headers=api.ADMIN
        ) as client:
            yield AuditUnderTest(client, settings)


def events_for(subject: str, count: int) -> list[CloudEvent]:
    return [
        CloudEvent.new(
            type="mfc.prompt.issued",
            source="service/test",
            subject=subject,
            # A large float comes back from jsonb as an integer: verify must
            # still hash it as the float it was.
            data={
                "n": n,
                "ratio": n / 7,
                "large": 3.293195465300683e16 * (n + 1),
                "county_code": "NC-063",
            },
            time=datetime.now(UTC),
        )
        for n in range(count)
    ]


async def publish(infra, events: list[CloudEvent]) -> None:
    await produce(
        infra.bootstrap_servers,
        TOPIC,
        *[((e.subject or "").encode(), e.to_bytes()) for e in events],
    )


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


async def test_consumed_events_form_a_tree_with_proofs_that_verify(infra, audit):
    subject = str(uuid4())
    events = events_for(subject, 30)
    await publish(infra, [*events, events[3], events[17]])  # two redeliveries
    entries = await audit.wait_for(subject, 30)
    await asyncio.sleep(0.5)
    entries = [
        e
        for e in (await audit.get("/v1/audit/entries", episode_id=subject)).json()[
            "entries"
        ]
        if e["topic"] == TOPIC
    ]
    assert sorted(e["event_id"] for e in entries) == sorted(e.id for e in events)

    first = (await audit.client.post("/v1/audit/checkpoints")).json()
    more = events_for(subject, 7)
    await publish(infra, more)
    await audit.wait_for(subject, 37)
    second = (await audit.client.post("/v1/audit/checkpoints")).json()
    assert second["tree_size"] >= first["tree_size"] + 7

    for entry in entries[::7]:
        proof = (await audit.get(f"/v1/audit/proof/{entry['seq']}")).json()
        assert proof["tree_size"] == second["tree_size"]  # the newest checkpoint's
        assert merkle.verify_inclusion(
            leaf=unb64(entry["leaf_hash"]),
            index=entry["seq"] - 1,
            size=proof["tree_size"],
            path=[unb64(h) for h in proof["audit_path"]],
            root=unb64(second["root_hash"]),
        )
    consistency = (
        await audit.get(
            "/v1/audit/consistency",
            **{"from": first["tree_size"], "to": second["tree_size"]},
        )
    ).json()
    assert merkle.verify_consistency(
        old_size=first["tree_size"],
        new_size=second["tree_size"],
        old_root=unb64(first["root_hash"]),
        new_root=unb64(second["root_hash"]),
        proof=[unb64(h) for h in consistency["proof"]],
    )
    report = (await audit.get("/v1/audit/verify")).json()
    assert report["ok"], report["problems"]
    assert report["checkpoints_checked"] >= 4  # two stored, two outside copies
    assert len(list(audit.settings.checkpoint_dir.glob("*.json"))) >= 2

    metrics = (await audit.get("/metrics")).text
    assert "mfc_audit_entries_appended_total" in metrics
    assert "mfc_audit_last_checkpoint_age_seconds" in metrics


async def test_the_log_refuses_update_delete_and_truncate(infra, audit, unique):
    subject = str(uuid4())
    await publish(infra, events_for(subject, 2))
    await audit.wait_for(subject, 2)
    await audit.client.post("/v1/audit/checkpoints")  # a row in every table
    owner = await asyncpg.connect(
        infra.database_url, server_settings={"search_path": unique}
    )
    try:
        for statement in (
            "UPDATE log_entries SET type = 'x'",
            "DELETE FROM log_entries",
            "TRUNCATE log_entries",
            "UPDATE merkle_nodes SET hash = ''::bytea",
            "DELETE FROM checkpoints",
        ):
            # Even the owner: the triggers refuse.
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await owner.execute(statement)
        # The role the service works as lacks the privilege in the first place.
        await owner.execute(f"SET ROLE {unique}_appender")
        for statement in (
            "UPDATE log_entries SET type = 'x'",
            "DELETE FROM log_entries",
            "TRUNCATE log_entries",
        ):
            with pytest.raises(
                asyncpg.InsufficientPrivilegeError, match="permission denied"
            ):
                await owner.execute(statement)
    finally:
        await owner.close()


async def test_tampering_behind_the_triggers_is_named_online_and_offline(
    infra, audit, unique, tmp_path, capsys
):
    subject = str(uuid4())
    await publish(infra, events_for(subject, 12))
    entries = await audit.wait_for(subject, 12)
    await audit.client.post("/v1/audit/checkpoints")
    public_key = tmp_path / "public.pem"
    public_key.write_bytes((await audit.get("/v1/audit/public-key")).content)

    async def offline_verify() -> tuple[int, dict]:
        export = tmp_path / f"export-{uuid4().hex}.jsonl"
        export.write_bytes(
            (await audit.get("/v1/audit/entries", format="jsonl")).content
        )
        capsys.readouterr()
        code = mfc(
            [
                "audit",
                "verify",
                "--entries",
                str(export),
                "--checkpoints",
                str(audit.settings.checkpoint_dir),
                "--public-key",
                str(public_key),
            ]
        )
        return code, json.loads(capsys.readouterr().out)

    code, before = await offline_verify()
    assert (code, before["ok"]) == (0, True)

    victim = entries[5]["seq"]
    superuser = await asyncpg.connect(
        infra.database_url, server_settings={"search_path": unique}
    )
    try:
        # What a database superuser can do: switch the triggers off and rewrite.
        await superuser.execute("SET session_replication_role = replica")
        await superuser.execute(
            "UPDATE log_entries SET event = jsonb_set(event, '{data,n}', '99') "
            "WHERE seq = $1",
            victim,
        )
    finally:
        await superuser.close()

    report = (await audit.get("/v1/audit/verify")).json()
    assert "mfc_audit_verify_failures_total 1.0" in (await audit.get("/metrics")).text
    assert not report["ok"]
    assert report["first_bad_entry"] == victim
    assert report["first_bad_checkpoint"]["tree_size"] >= victim
    code, after = await offline_verify()
    assert code == 1
    assert after["first_bad_entry"] == victim


async def test_queries_filter_page_and_export(infra, audit):
    subject = str(uuid4())
    await publish(infra, events_for(subject, 5))
    await audit.wait_for(subject, 5)
    trail = (await audit.get(f"/v1/audit/episodes/{subject}/trail")).json()["entries"]
    assert [e["event"]["data"]["n"] for e in trail] == [0, 1, 2, 3, 4]
    csv_text = (
        await audit.get(f"/v1/audit/episodes/{subject}/trail", format="csv")
    ).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("seq,event_id,topic,type")
    assert len(lines) == 6
    jsonl = (
        await audit.get("/v1/audit/entries", episode_id=subject, format="jsonl")
    ).text
    assert [json.loads(x)["seq"] for x in jsonl.splitlines()] == [
        e["seq"] for e in trail
    ]
    assert (await audit.get(f"/v1/audit/episodes/{uuid4()}/trail")).status_code == 404
    assert (await audit.get("/v1/audit/entries", cursor="x")).status_code == 422
    assert (await audit.get("/v1/audit/proof/0")).status_code == 404
