"""The policy file in the audit trail: at start-up the notifier announces the policy
it decides deadlines by (``mfc.policy.adopted`` on ``mfc.policies.v1``, through the
outbox), so every obligation's ``policy_digest`` resolves to the file's content.

The event's id is derived from the digest: every replica and every restart announces
the same event, and the trail (which appends an event id once) keeps the first."""

from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from shared import topics
from shared.clock import Clock
from shared.events import CloudEvent
from shared.outbox import enqueue
from shared.policy import Policy
from shared.published import PolicyAdopted, PolicyEvent


def policy_event_id(digest: str) -> str:
    """The one event id of a policy version, whoever announces it."""
    return str(uuid5(NAMESPACE_URL, f"urn:mfc:policy:{digest}"))


def adopted(policy: Policy, *, source: str, clock: Clock) -> CloudEvent:
    data = PolicyAdopted(
        digest=policy.digest,
        version=policy.document.version,
        file_name=Path(policy.origin).name,
        content=policy.content.decode(),
        adopted_at=clock.now(),
        adopted_by="notifier",
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
        self, pool: asyncpg.Pool, policy: Policy, *, source: str, clock: Clock
    ) -> None:
        self._pool, self._event = pool, adopted(policy, source=source, clock=clock)

    async def start(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await enqueue(conn, topic=topics.POLICIES, event=self._event)

    async def stop(self) -> None:
        return None
