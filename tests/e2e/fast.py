"""A notifier or followup process with the policy in seconds, delivering to real
local receivers, on the session's infrastructure (its own schema and group)."""

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from prometheus_client.parser import text_string_to_metric_families

from devtools.devstack import ServiceProcess, free_port, service_environment
from shared import topics
from tests import api
from tests.conftest import make_report
from tests.receivers import SmtpReceiver, WebhookReceiver

FAST_POLICY = Path(__file__).parents[1] / "fixtures" / "fast_policy.toml"
# A Standard Webhooks secret for tests only: base64 of "test-webhook-secret-for-tests-only".
SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItdGVzdHMtb25seQ=="


class FastService:
    def __init__(
        self,
        name: str,
        stack: Any,
        webhook: WebhookReceiver,
        smtp: SmtpReceiver,
        tmp: Path,
    ) -> None:
        self.name = name
        self.stack = stack
        self.webhook = webhook
        self.smtp = smtp
        prefix = name.upper()
        schema = f"{name}_fast_{uuid4().hex[:8]}"
        self.overrides = {
            f"{prefix}_DB_SCHEMA": schema,
            f"{prefix}_CONSUMER_GROUP": schema,
            f"{prefix}_POLICY_PATH": str(FAST_POLICY),
            f"{prefix}_WEBHOOK_URL": webhook.url,
            f"{prefix}_WEBHOOK_SECRET": SECRET,
            f"{prefix}_SMTP_HOST": "127.0.0.1",
            f"{prefix}_SMTP_PORT": str(smtp.port),
            f"{prefix}_TIMER_POLL_INTERVAL": "100ms",
            f"{prefix}_DELIVERY_INITIAL_BACKOFF": "200ms",
            f"{prefix}_SHUTDOWN_GRACE": "1s",
            f"{prefix}_WATCHDOG_INTERVAL": "500ms",
            f"{prefix}_CONSUMER_LAG_INTERVAL": "300ms",
            f"{prefix}_WATCHDOG_MARGIN": "5s",
            f"{prefix}_HEARTBEAT_URL": webhook.url.replace("/alerts", "/heartbeat"),
        }
        self.tmp = tmp
        self.replicas: list[ServiceProcess] = []

    def add_replica(self) -> ServiceProcess:
        port = free_port()
        env = service_environment(
            self.name,
            port,
            self.stack.infra,
            base=dict(os.environ),
            overrides=self.overrides,
        )
        replica = ServiceProcess(
            self.name, port, env, self.tmp / f"{self.name}-{len(self.replicas)}.log"
        )
        replica.start()
        self.wait_ready(replica)
        self.replicas.append(replica)
        self.wait_caught_up()
        return replica

    def wait_ready(self, replica: ServiceProcess) -> None:
        deadline = time.monotonic() + 60
        while not replica.ready():
            assert replica.alive(), replica.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"fast {self.name} not ready"
            time.sleep(0.2)

    def wait_caught_up(self, topic: str = topics.EPISODES) -> None:
        """Until the replicas hold every partition of ``topic`` and have committed
        all of it. A new group starts at the topic's beginning, so a fresh service
        first replays the episodes of every earlier test; an episode reported before
        that would open its obligations late and skip the early steps."""
        partitions = topics.DEFAULT_PARTITIONS
        deadline = time.monotonic() + 120
        while True:
            lags = [lag_samples(replica.url).get(topic) for replica in self.replicas]
            known = [lag for lag in lags if lag is not None]
            held = sum(held for held, _ in known)
            if held == partitions and all(behind == 0 for _, behind in known):
                return
            assert time.monotonic() < deadline, f"{self.name} lags on {topic}: {lags}"
            time.sleep(0.2)

    def restart_after_kill(self, index: int = 0) -> None:
        self.replicas[index].start()
        self.wait_ready(self.replicas[index])

    @property
    def url(self) -> str:
        return self.replicas[0].url

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


def lag_samples(url: str) -> dict[str, tuple[int, int]]:
    """Per topic: (partitions this replica holds, records it is behind by)."""
    text = api.get(f"{url}/metrics", timeout=5).text
    found: dict[str, tuple[int, int]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mfc_consumer_lag":
            continue
        for sample in family.samples:
            topic = sample.labels["topic"]
            held, behind = found.get(topic, (0, 0))
            found[topic] = (held + 1, behind + int(sample.value))
    return found


def report_of_now(**child: Any) -> dict[str, Any]:
    """A report of a KY-111 child (the county the fast policy has rules for), whose
    agency learned of it now."""
    now = datetime.now(UTC)
    report = make_report(
        county_code="KY-111",
        last_seen_at=(now - timedelta(minutes=2)).isoformat(),
        discovered_at=(now - timedelta(minutes=1)).isoformat(),
        agency_learned_at=now.isoformat(),
    )
    report["child"].update(child)
    return report


def report_now(stack: Any, **child: Any) -> dict[str, Any]:
    """Report a KY-111 child, clock now; the episode as intake answered."""
    report = report_of_now(**child)
    answer = api.post(f"{stack.url('intake')}/v1/episodes", json=report, timeout=10)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result
