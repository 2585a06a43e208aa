"""The policy file in the audit trail: at start-up intake (which answers a report
with its deadlines and stamps the policy's digest on the episode) and the notifier
(which opens the obligations) announce the policy they run by
(``mfc.policy.adopted`` on ``mfc.policies.v1``, through the outbox), so every
``policy_digest`` in the trail resolves to the file's content.

The event's id is derived from the digest: every replica and every restart announces
the same event, and the trail (which appends an event id once) keeps the first."""

from functools import partial
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from shared import topics
from shared.clock import Clock
from shared.events import CloudEvent
from shared.outbox import enqueue
from shared.policy import Policy
from shared.published import PolicyAdopted, PolicyEvent
from shared.runtime import ServiceRuntime


def policy_event_id(digest: str) -> str:
    """The one event id of a policy version, whoever announces it."""
    return str(uuid5(NAMESPACE_URL, f"urn:mfc:policy:{digest}"))


def adopted(
    policy: Policy, *, source: str, clock: Clock, by: str = "notifier"
) -> CloudEvent:
    data = PolicyAdopted(
        digest=policy.digest,
        version=policy.document.version,
        file_name=Path(policy.origin).name,
        content=policy.content.decode(),
        adopted_at=clock.now(),
        adopted_by=by,
    )
    return CloudEvent.new(
        type=PolicyEvent.ADOPTED,
        source=source,
        subject=policy.digest,
        data=data,
        time=clock.now(),
        id=policy_event_id(policy.digest),
    )


class PolicyAnnouncement:
    """A start-up step run as a worker: one outbox row, then nothing to do."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: Policy,
        *,
        source: str,
        clock: Clock,
        by: str,
    ) -> None:
        self._pool = pool
        self._event = adopted(policy, source=source, clock=clock, by=by)

    async def start(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await enqueue(conn, topic=topics.POLICIES, event=self._event)

    async def stop(self) -> None:
        return None


def announce_policy(runtime: ServiceRuntime, policy: Policy, *, by: str) -> None:
    """Announce ``policy`` to the trail once the service's pool is open."""
    runtime.add_worker(
        partial(
            PolicyAnnouncement,
            policy=policy,
            source=runtime.source,
            clock=runtime.clock,
            by=by,
        )
    )
