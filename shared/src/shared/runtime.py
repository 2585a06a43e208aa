"""The infrastructure one service process runs on, and its life cycle.

A service's ``bootstrap.create_app`` (its composition root) builds a ``ServiceRuntime``
from its settings, adds its Kafka subscribers to ``runtime.router`` and its HTTP routes
to the FastAPI app, and hands ``runtime.lifespan`` to FastAPI. Nothing connects at
import or construction time: connections open in the lifespan, in dependency order,
and close in reverse.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

import asyncpg
from aiokafka import ConsumerRecord
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)

from shared import topics
from shared.apidoc import document_errors
from shared.auth import Authenticator, Role, token_verifier
from shared.bodylimit import BodyLimit
from shared.clock import Clock
from shared.config import ServiceSettings
from shared.consumer import (
    BatchHandler,
    ConsumerMetrics,
    Handler,
    RawMessage,
    ReliableConsumer,
    RetryPolicy,
)
from shared.db import Migration, apply_migrations, create_pool, service_migrations
from shared.events import shown
from shared.kafka import KafkaPublisher, ensure_topics
from shared.lag import ConsumerLag
from shared.latency import RequestLatency
from shared.outbox import OutboxRelay

logger = logging.getLogger(__name__)


class Worker(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        clock: Clock,
        *,
        schema: str | None = None,
        migrations: list[Migration] | None = None,
        components: tuple[str, ...] = (),
        session_role: str | None = None,
    ) -> None:
        self.service = service
        self.schema = schema or settings.db_schema or service
        self._migrations = migrations
        self._components = components
        # Migrations run as the login user; the service then works as this role
        # ({schema} is replaced), which its migrations created with fewer rights.
        self._session_role = (
            session_role.format(schema=self.schema) if session_role else None
        )
        self._workers: list[Callable[[asyncpg.Pool], Worker]] = []
        self._running: list[Worker] = []
        self.settings = settings
        self.clock = clock
        self.source = f"service/{service}"
        self.registry = CollectorRegistry()
        self.auth = Authenticator(token_verifier(settings), self.registry)
        self.router = KafkaRouter()
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"mfc-{service}",
            # New topics (e.g. for the audit pattern subscription) are seen in seconds.
            metadata_max_age_ms=10_000,
            # FastStream's own lines go through our JSON handler, not its own.
            logger=logging.getLogger("mfc.faststream"),
            log_level=logging.DEBUG,
            graceful_timeout=settings.shutdown_grace.total_seconds(),
            security=settings.kafka_security().for_faststream(),
        )
        self.publisher = KafkaPublisher(
            settings.kafka_bootstrap_servers,
            client_id=f"mfc-{service}-outbox",
            security=settings.kafka_security(),
        )
        self._pool: asyncpg.Pool | None = None
        self._relay: OutboxRelay | None = None
        self._consumers: dict[str, ReliableConsumer] = {}
        self._consumer_metrics = ConsumerMetrics(self.registry)
        self.lag = ConsumerLag(
            self._kafka_consumers,
            self.registry,
            interval=settings.consumer_lag_interval.total_seconds(),
        )

    def _kafka_consumers(self) -> list[Any]:
        subscribers = self.broker.subscribers
        found = [getattr(s, "consumer", None) for s in subscribers]
        return [c for c in found if c is not None]

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.service}: the database pool is not open yet")
        return self._pool

    @property
    def relay(self) -> OutboxRelay:
        if self._relay is None:
            raise RuntimeError(f"{self.service}: the outbox relay is not running")
        return self._relay

    def add_worker(self, make: Callable[[asyncpg.Pool], "Worker"]) -> None:
        """Run a background worker (timers, deliveries) while the service runs; it
        is made once the pool is open, started before the subscribers, stopped after."""
        self._workers.append(make)

    def subscribe(
        self,
        name: str,
        handler: Handler,
        *topic_names: str,
        pattern: str | None = None,
        group_suffix: str | None = None,
    ) -> None:
        """Consume ``topic_names`` (or a regex ``pattern``) reliably with ``handler``.

        ``name`` identifies the consumer in ``processed_events`` and in metrics. The
        offset is committed only after ``consume`` returned, i.e. after the handler's
        transaction committed or the message was dead-lettered. A second subscriber
        of a service takes its own consumer group (``<group>-<group_suffix>``), so
        neither waits on the other's rebalances.
        """
        consumer = self._consumer(name)

        async def on_message(message: KafkaMessage) -> None:
            # A single (non-batch) subscriber always gets one ConsumerRecord.
            record = cast("ConsumerRecord[bytes, bytes]", message.raw_message)
            await consumer.consume(_raw(record), handler)

        options = self._subscriber_options(name, pattern, group_suffix)
        self.router.subscriber(*topic_names, **options)(on_message)

    def subscribe_batch(
        self,
        name: str,
        handler: BatchHandler,
        *topic_names: str,
        pattern: str | None = None,
        group_suffix: str | None = None,
        unreadable_left_to: Mapping[str, str] | None = None,
    ) -> None:
        """Like ``subscribe``, but up to ``CONSUMER_BATCH_SIZE`` messages are handled
        in one transaction: one claim and one commit per batch
        (``shared.consumer.each`` turns a per-event handler into a batch handler).
        ``unreadable_left_to`` names, per topic, the consumer that dead-letters a
        message nobody can read, so that this one does not do it a second time."""
        consumer = self._consumer(name, unreadable_left_to)

        async def on_batch(message: KafkaMessage) -> None:
            records = cast(
                "tuple[ConsumerRecord[bytes, bytes], ...]", message.raw_message
            )
            await consumer.consume_batch([_raw(r) for r in records], handler)

        self.router.subscriber(
            *topic_names,
            batch=True,
            max_records=self.settings.consumer_batch_size,
            batch_timeout_ms=50,
            **self._subscriber_options(name, pattern, group_suffix),
        )(on_batch)

    def _consumer(
        self, name: str, unreadable_left_to: Mapping[str, str] | None = None
    ) -> ReliableConsumer:
        consumer = ReliableConsumer(
            name=name,
            source=self.source,
            pool_provider=lambda: self.pool,
            clock=self.clock,
            metrics=self._consumer_metrics,
            max_message_bytes=self.settings.max_message_bytes,
            unreadable_left_to=unreadable_left_to,
            retry=RetryPolicy(
                max_attempts=self.settings.handler_max_attempts,
                initial_backoff=self.settings.handler_initial_backoff,
                max_backoff=self.settings.handler_max_backoff,
            ),
        )
        self._consumers[name] = consumer
        return consumer

    def _subscriber_options(
        self, name: str, pattern: str | None, group_suffix: str | None = None
    ) -> dict[str, Any]:
        group = self.settings.consumer_group
        subscriber_options: dict[str, Any] = {
            "group_id": f"{group}-{group_suffix}" if group_suffix else group,
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            # A new consumer group starts at the beginning: events published before
            # the service first started must not be skipped.
            "auto_offset_reset": "earliest",
            "title": f"{self.service}:{name}",
        }
        if pattern is not None:
            subscriber_options["pattern"] = pattern
        return subscriber_options

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI | None = None) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        settings = self.settings
        self._pool = await create_pool(
            settings.database_url.get_secret_value(),
            schema=self.schema,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
        )
        migrations = self._migrations
        if migrations is None:
            migrations = service_migrations(self.service, self._components)
        applied = await apply_migrations(self._pool, migrations)
        logger.info("database ready (%d migration(s) applied)", applied)
        if self._session_role is not None:
            await self._pool.close()
            self._pool = await create_pool(
                settings.database_url.get_secret_value(),
                schema=self.schema,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                role=self._session_role,
            )
        if settings.create_topics:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                topics.ALL,
                partitions=topics.DEFAULT_PARTITIONS,
                security=settings.kafka_security(),
            )
        await self.publisher.start()
        self._relay = OutboxRelay(
            self._pool,
            self.publisher,
            registry=self.registry,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval,
        )
        await self._relay.start()
        for make_worker in self._workers:
            worker = make_worker(self._pool)
            await worker.start()
            self._running.append(worker)
        self.broker.include_router(self.router)
        await self.broker.start()
        await self.lag.start()
        logger.info("%s started", self.service)

    async def stop(self) -> None:
        # Reverse order: stop taking messages, then drain what is being published.
        await self.lag.stop()
        await self.broker.stop()
        for worker in reversed(self._running):
            await worker.stop()
        self._running.clear()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        await self.publisher.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        logger.info("%s stopped", self.service)

    async def check_ready(self) -> dict[str, str]:
        """Reachability of the broker and the database, by name."""
        problems: dict[str, str] = {}
        try:
            await self.pool.fetchval("SELECT 1")
        except Exception as exc:
            problems["database"] = f"{type(exc).__name__}: {exc}"
        try:
            if not await self.broker.ping(timeout=2.0):
                problems["broker"] = "no answer within 2s"
        except Exception as exc:
            problems["broker"] = f"{type(exc).__name__}: {exc}"
        return problems


def _raw(record: "ConsumerRecord[bytes, bytes]") -> RawMessage:
    return RawMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
    )


InvalidRequestHook = Callable[
    [Request, Any, list[dict[str, Any]]], list[dict[str, Any]]
]
"""``(request, parsed body or None, problems) -> problems`` for a refused request."""


def add_ops_routes(
    app: FastAPI,
    runtime: ServiceRuntime,
    *,
    extra_check: Callable[[], Awaitable[dict[str, str]]] | None = None,
    refine_invalid: InvalidRequestHook | None = None,
) -> None:
    """``/healthz`` (alive), ``/readyz`` (broker and database reachable), ``/metrics``,
    request latency, and 422 answers that name fields without echoing their values
    (a request may carry a child's personal data; answers and logs must not).

    ``refine_invalid`` sees every schema refusal (the request, its parsed body and
    the problems) and returns the problems to answer: a service adds the complaints
    of its own rules there, so one 422 lists everything at fault."""
    latency = Histogram(
        "mfc_http_request_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=runtime.registry,
    )

    app.add_middleware(
        BodyLimit,
        max_bytes=runtime.settings.max_message_bytes,
        setting=f"{runtime.settings.model_config.get('env_prefix', '')}MAX_MESSAGE_BYTES",
    )

    app.add_middleware(RequestLatency, histogram=latency)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        detail = validation_problems(exc.errors())
        if refine_invalid is not None:
            detail = refine_invalid(request, exc.body, detail)
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": runtime.service}

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={503: {"description": "Not ready: the problems, by component"}},
    )
    async def readyz(response: Response) -> dict[str, Any]:
        problems = await runtime.check_ready()
        if extra_check is not None:
            problems.update(await extra_check())
        if problems:
            response.status_code = 503
            return {"status": "not ready", "problems": problems}
        return {"status": "ready"}

    guard = (
        [Depends(runtime.auth.require(Role.METRICS))]
        if runtime.settings.metrics_require_token
        else []
    )

    @app.get(
        "/metrics",
        tags=["operations"],
        dependencies=guard,
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(
            generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST
        )

    document_errors(app)


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A 422's problems: where (each step of the path as a person can read it: a
    sender's unknown key is escaped and cut, never echoed whole), what and which
    kind; never the value sent, which may be a child's personal data."""
    return [
        {
            "loc": [p if isinstance(p, int) else shown(p) for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in errors
    ]
