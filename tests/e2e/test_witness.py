"""The witness through real processes (issue 22, part 6): an audit service with
its own schema and its own witness process co-signs its checkpoints; then history
is rewritten in the database (superuser, triggers off, every tree node recomputed
consistently, the checkpoints re-signed by the log's own key). The witness refuses
the rewritten tree and verify fails, naming it."""

import asyncio
import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from audit.adapters.postgres import APPEND_LOCK
from audit.domain import merkle
from audit.domain.entries import entry_leaf_hash
from devtools.devstack import (
    ServiceProcess,
    dev_witness,
    free_port,
    service_environment,
)
from tests import api
from tests.e2e.test_audit import report
from tests.e2e.test_walking_skeleton import eventually


class OwnAudit:
    def __init__(self, audit: ServiceProcess, witness: ServiceProcess, schema: str):
        self.audit, self.witness, self.schema = audit, witness, schema

    def get(self, path: str, **params) -> dict:
        answer = api.get(f"{self.audit.url}{path}", params=params, timeout=120)
        assert answer.status_code == 200, answer.text
        result: dict = answer.json()
        return result


def _ready(process: ServiceProcess) -> None:
    deadline = time.monotonic() + 60
    while not process.ready():
        assert process.alive(), process.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{process.name} not ready"
        time.sleep(0.2)


@pytest.fixture
def own_audit(stack, tmp_path: Path) -> Iterator[OwnAudit]:
    schema = f"audit_w_{uuid4().hex[:8]}"
    base = {
        **os.environ,
        "AUDIT_DB_SCHEMA": schema,
        "AUDIT_CONSUMER_GROUP": schema,
        "AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit" / "signing-key.pem"),
        "AUDIT_GENERATE_SIGNING_KEY": "true",
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "audit" / "checkpoints"),
        "AUDIT_CHECKPOINT_INTERVAL": "1h",  # signed when the test asks
    }
    witness_port, audit_port = free_port(), free_port()
    witness_env = dev_witness(base, tmp_path / "witness", witness_port)
    witness = ServiceProcess(
        "audit.witness", witness_port, witness_env, tmp_path / "witness.log"
    )
    env = service_environment("audit", audit_port, stack.infra, base=base)
    audit = ServiceProcess("audit", audit_port, env, tmp_path / "audit.log")
    witness.start()
    audit.start()
    try:
        _ready(witness)
        _ready(audit)
        yield OwnAudit(audit, witness, schema)
    finally:
        audit.stop()
        witness.stop()


async def rewrite_history(database_url: str, schema: str, seq: int) -> None:
    """What a database superuser could do: change one entry, give it a matching
    leaf hash, recompute every tree node, drop the checkpoints and their copies."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        async with conn.transaction():
            await conn.execute(APPEND_LOCK)  # the service appends meanwhile
            await conn.execute("SET LOCAL session_replication_role = replica")
            row = await conn.fetchrow(
                "SELECT topic, event FROM log_entries WHERE seq = $1", seq
            )
            event = json.loads(row["event"])
            event["data"]["county_code"] = "NC-183"  # another county's episode now
            leaf = entry_leaf_hash(seq=seq, topic=row["topic"], event=event)
            await conn.execute(
                "UPDATE log_entries SET event = $2::jsonb, leaf_hash = $3 WHERE seq = $1",
                seq,
                json.dumps(event),
                leaf,
            )
            leaves = [
                r["leaf_hash"]
                for r in await conn.fetch(
                    "SELECT leaf_hash FROM log_entries ORDER BY seq"
                )
            ]
            compact, nodes = merkle.CompactRange(), []
            for hash_ in leaves:
                nodes += compact.append(hash_)
            await conn.execute("DELETE FROM merkle_nodes")
            await conn.executemany(
                "INSERT INTO merkle_nodes (level, idx, hash) VALUES ($1, $2, $3)",
                [(level, idx, hash_) for (level, idx), hash_ in nodes],
            )
            await conn.execute("DELETE FROM cosignatures")
            await conn.execute("DELETE FROM checkpoints")
    finally:
        await conn.close()


def test_the_witness_refuses_a_rewritten_history_and_verify_fails(
    stack, own_audit: OwnAudit, tmp_path: Path
):
    episode_id = report(stack, learned_ago=timedelta(minutes=5))
    for attempt in eventually(90):
        with attempt:
            trail = own_audit.get(f"/v1/audit/episodes/{episode_id}/trail")["entries"]
            # The episode and obligation topics reach the audit independently, so
            # wait for both entries; the rewrite below needs the report's entry.
            types = {e["type"] for e in trail}
            assert {"mfc.episode.reported", "mfc.obligation.opened"} <= types, types
    audit = own_audit.audit.url
    signed = api.post(f"{audit}/v1/audit/checkpoints", timeout=60)
    assert signed.status_code == 201, signed.text
    newest = own_audit.get("/v1/audit/checkpoints", limit=1)["checkpoints"][0]
    assert "\u2014 witness.localhost/mfc " in newest["note"], "co-signed"
    verified = own_audit.get("/v1/audit/verify")
    assert verified["ok"], verified["problems"]
    assert verified["witnessed_size"] >= signed.json()["tree_size"]

    # A witness that is down delays co-signing, never the log; back, it co-signs
    # from the size it remembers.
    own_audit.witness.stop()
    pending = api.post(f"{audit}/v1/audit/checkpoints", timeout=60)
    assert pending.status_code == 201, pending.text
    metrics = api.get(f"{audit}/metrics", timeout=10).text
    assert 'mfc_audit_witness_failures_total{reason="unavailable"}' in metrics
    down = own_audit.get("/v1/audit/verify")
    assert not down["ok"], "verify says it could not ask the witness"
    assert "the witness could not be asked" in "\n".join(down["problems"])
    own_audit.witness.start()
    _ready(own_audit.witness)
    again = api.post(f"{audit}/v1/audit/checkpoints", timeout=60)
    assert again.status_code == 201, again.text
    newest = own_audit.get("/v1/audit/checkpoints", limit=1)["checkpoints"][0]
    assert "\u2014 witness.localhost/mfc " in newest["note"], "co-signed again"

    reported = next(e for e in trail if e["type"] == "mfc.episode.reported")
    asyncio.run(
        rewrite_history(stack.infra.database_url, own_audit.schema, reported["seq"])
    )
    for copy in (tmp_path / "audit" / "checkpoints").rglob("*"):
        if copy.is_file():
            copy.unlink()

    # The log signs its rewritten tree; the witness will not co-sign it.
    resigned = api.post(f"{audit}/v1/audit/checkpoints", timeout=60)
    assert resigned.status_code == 201, resigned.text
    metrics = api.get(f"{audit}/metrics", timeout=10).text
    assert 'mfc_audit_witness_failures_total{reason="refused"} 1.0' in metrics
    assert "refused a checkpoint" in own_audit.witness.log_path.read_text()
    newest = own_audit.get("/v1/audit/checkpoints", limit=1)["checkpoints"][0]
    assert "witness.localhost" not in newest["note"]

    verified = own_audit.get("/v1/audit/verify")
    assert not verified["ok"]
    problems = "\n".join(verified["problems"])
    assert "its history was rewritten" in problems, problems
