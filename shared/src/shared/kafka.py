"""Kafka plumbing on aiokafka: the outbox's producer, topic creation, reachability.

Consuming goes through FastStream (see ``shared.consumer``); producing goes only
through the outbox relay, which needs batched sends that wait for every ack.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.outbox import OutgoingMessage

logger = logging.getLogger(__name__)


class KafkaPublisher:
    """The outbox relay's producer.

    ``acks="all"`` so a publish counts only once the broker has it durably; no
    idempotent producer (our test broker lacks it, INFRA.md) and none needed, because
    consumers dedupe on event id.
    """

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._started: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("KafkaPublisher used before start()")
        return self._started

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the producer is made here, not in
        # __init__ (which runs in the composition root, outside any loop).
        self._started = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=15_000,
        )
        await self._started.start()

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        # send() only queues; awaiting every delivery future gives batched throughput
        # and still fails the whole batch if any message was not acknowledged.
        futures = [
            await self._producer.send(m.topic, value=m.value, key=m.key)
            for m in messages
        ]
        await asyncio.gather(*futures)

    async def ping(self) -> None:
        await self._producer.client.fetch_all_metadata()


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int
) -> None:
    """Create the topics that do not exist yet (idempotent, safe to race)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="mfc-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=1)
                    for t in missing
                ]
            )
        logger.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()
