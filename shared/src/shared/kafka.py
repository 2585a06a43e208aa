"""Kafka plumbing on aiokafka: the outbox's producer, topic creation, reachability.

Consuming goes through FastStream (see ``shared.consumer``); producing goes only
through the outbox relay, which needs batched sends that wait for every ack.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.outbox import OutgoingMessage

logger = logging.getLogger(__name__)


class KafkaPublisher:
    """The outbox relay's producer.

    ``acks="all"`` so a publish counts only once the broker has it durably; no
    idempotent producer (our test broker lacks it, INFRA.md) and none needed, because
    consumers dedupe on event id.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        security: "KafkaSecurity | None" = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._security = security or KafkaSecurity()
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
            **self._security.client_options(),
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
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int,
    security: "KafkaSecurity | None" = None,
) -> None:
    """Create the topics that do not exist yet (idempotent, safe to race)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="mfc-admin",
        **(security or KafkaSecurity()).client_options(),
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


@dataclass(frozen=True)
class KafkaSecurity:
    """How the services authenticate to a production broker: TLS, SASL or both.
    The same settings go to every client (FastStream's consumers, the outbox
    producer, the topic admin)."""

    protocol: str = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: str | None = None
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."""
    username: str | None = None
    password: str | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_ssl:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.cafile, certfile=self.certfile, keyfile=self.keyfile
        )
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            options["ssl_context"] = self.ssl_context()
        if self.protocol.startswith("SASL"):
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options

    def for_faststream(self) -> BaseSecurity | None:
        """The same, as FastStream's security object (None: plaintext)."""
        if self.protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if not self.protocol.startswith("SASL"):
            return BaseSecurity(ssl_context=context, use_ssl=True)
        kinds: dict[str | None, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }
        return kinds[self.sasl_mechanism](
            username=self.username or "",
            password=self.password or "",
            ssl_context=context,
            use_ssl=self.uses_ssl,
        )
