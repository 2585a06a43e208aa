"""Real infrastructure for integration and e2e tests, from two backends.

* ``containers``: PostgreSQL and a Kafka-protocol broker started by testcontainers.
  Images come from ``MFC_TEST_POSTGRES_IMAGE`` / ``MFC_TEST_KAFKA_IMAGE``; the defaults
  are the public ``postgres`` and ``apache/kafka`` images, for machines that reach a
  registry. ``scripts/test.sh`` builds equivalent images offline and points the
  variables at them (see docs/development.md). Containers use host networking, so all
  traffic stays on 127.0.0.1.
* ``embedded``: the same ``EmbeddedInfrastructure`` that ``mfc dev`` runs.
"""

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from devtools.devstack import (
    EmbeddedInfrastructure,
    Infrastructure,
    free_port,
    wait_for_port,
)
from shared import topics
from shared.kafka import ensure_topics

os.environ.setdefault(
    "TESTCONTAINERS_RYUK_DISABLED", "true"
)  # no registry for the reaper

POSTGRES_IMAGE = os.environ.get("MFC_TEST_POSTGRES_IMAGE", "postgres:16")
KAFKA_IMAGE = os.environ.get("MFC_TEST_KAFKA_IMAGE", "apache/kafka:3.9.1")
POSTGRES_PASSWORD = "test-only-password"  # a throwaway container on 127.0.0.1


async def _wait_for_postgres(url: str, *, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        await conn.close()
        return


def require_local_image(image: str) -> None:
    """Never pull by accident: on our machines a pull is traffic to a registry that
    cannot be reached. Pulling is opt-in (MFC_TEST_ALLOW_PULL=1)."""
    if os.environ.get("MFC_TEST_ALLOW_PULL") == "1":
        return
    import docker

    client = docker.from_env()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise RuntimeError(
            f"image {image} is not on this machine; build the offline images with "
            "scripts/build-images.sh (scripts/test.sh does), or set MFC_TEST_ALLOW_PULL=1 "
            "where a registry is reachable"
        ) from None
    finally:
        client.close()


@contextmanager
def container_infrastructure() -> Iterator[Infrastructure]:
    from testcontainers.core.container import DockerContainer

    require_local_image(POSTGRES_IMAGE)
    require_local_image(KAFKA_IMAGE)

    pg_port, kafka_port, controller_port = free_port(), free_port(), free_port()
    postgres = (
        DockerContainer(POSTGRES_IMAGE)
        .with_env("POSTGRES_PASSWORD", POSTGRES_PASSWORD)
        .with_env("POSTGRES_DB", "mfc")
        .with_command(
            f"postgres -p {pg_port} -c listen_addresses=127.0.0.1 -c fsync=off"
        )
        .with_kwargs(network_mode="host")
    )
    listener = f"127.0.0.1:{kafka_port}"
    kafka = DockerContainer(KAFKA_IMAGE).with_kwargs(network_mode="host")
    # Both images are configured through the environment: Tansu reads
    # LISTENER_URL/ADVERTISED_LISTENER_URL, apache/kafka the KAFKA_* variables;
    # each ignores the other's.
    for key, value in {
        "LISTENER_URL": f"tcp://{listener}",
        "ADVERTISED_LISTENER_URL": f"tcp://{listener}",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://{listener},CONTROLLER://127.0.0.1:{controller_port}",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{listener}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller_port}",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }.items():
        kafka = kafka.with_env(key, value)
    postgres.start()
    try:
        kafka.start()
        try:
            url = f"postgresql://postgres:{POSTGRES_PASSWORD}@127.0.0.1:{pg_port}/mfc"
            asyncio.run(_wait_for_postgres(url, within=60))
            wait_for_port(kafka_port, timeout=60)
            asyncio.run(
                ensure_topics(
                    listener, topics.ALL, partitions=topics.DEFAULT_PARTITIONS
                )
            )
            yield Infrastructure(bootstrap_servers=listener, database_url=url)
        finally:
            kafka.stop()
    finally:
        postgres.stop()


@contextmanager
def embedded_infrastructure(data_dir: Path) -> Iterator[Infrastructure]:
    embedded = EmbeddedInfrastructure(data_dir=data_dir, kafka_port=free_port(), env={})
    try:
        yield embedded.start()
    finally:
        embedded.stop()
