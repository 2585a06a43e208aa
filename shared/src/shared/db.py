"""PostgreSQL plumbing on asyncpg: one pool per service bound to the service's own
schema, and versioned SQL migrations applied at start-up.

Each service owns one schema (``intake``, ``notifier``, ...) and sets it as the
connection's ``search_path``, so its SQL never names a schema and no service can
read another's tables by accident.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import orjson

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    )
else:
    Conn = asyncpg.Connection
"""A connection, pooled or not; every adapter function takes one."""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def decode_json(text: str) -> Any:
    """A jsonb value as Python objects: orjson (4x the standard library's speed),
    and the standard library for the numbers orjson will not take (integers beyond
    64 bits, which jsonb writes for a large float such as 1e300)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column, the arrays an ``INSERT ... SELECT FROM
    unnest($1, $2, ...)`` takes: a batch in one statement instead of one a row."""
    return [list(column) for column in zip(*rows, strict=True)]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects, not strings.
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=decode_json, schema="pg_catalog"
    )


class PooledConnection(asyncpg.Connection):
    """A pooled connection handed back without asyncpg's reset round trip.

    The default reset (advisory unlock, ``CLOSE ALL``, ``UNLISTEN *``, ``RESET
    ALL``) costs a round trip and four statements at every release: 14 of the 61
    statements per report in ``bench.load``. Our code leaves no session state on a
    pooled connection to reset: advisory locks are transaction-level (the outbox
    relay's session lock is unlocked before its connection goes back), settings are
    ``SET LOCAL``, cursors live inside transactions, and ``Wakeup`` unlistens before
    it hands its connection back. asyncpg still rolls back a transaction left open
    at release, whatever this returns (tests/integration/shared/test_pool.py).
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    dsn: str,
    *,
    schema: str,
    min_size: int = 1,
    max_size: int = 10,
    role: str | None = None,
) -> asyncpg.Pool:
    """Open a pool whose connections use ``schema`` (created if missing), acting as
    ``role`` when given (a role the login user is a member of, e.g. one with fewer
    privileges)."""
    _check_schema(schema)
    conn = await asyncpg.connect(dsn)
    try:
        # A least-privilege role owns a schema made for it (deploy/postgres) and has
        # no CREATE on the database, which CREATE SCHEMA IF NOT EXISTS would demand.
        if not await conn.fetchval(
            "SELECT true FROM pg_namespace WHERE nspname = $1", schema
        ):
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    except asyncpg.UniqueViolationError:
        pass  # another replica created it at the same moment
    finally:
        await conn.close()
    server_settings = {"search_path": schema, "application_name": f"mfc-{schema}"}
    if role is not None:
        server_settings["role"] = role
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings,
        init=_init_connection,
        connection_class=PooledConnection,
    )
    assert pool is not None
    return pool


def _check_schema(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(component: str, package: str) -> list[Migration]:
    """Read ``NNNN_name.sql`` files of a package, in version order."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(
                Migration(component, int(match.group(1)), entry.name, entry.read_text())
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{package}: two migrations share a version number")
    return found


SHARED_COMPONENTS = {
    "timers": "shared.timer_migrations",
    "deliveries": "shared.delivery_migrations",
}
"""Optional shared tables a service may use (durable timers, alert deliveries)."""


def service_migrations(
    service: str, components: tuple[str, ...] = ()
) -> list[Migration]:
    """The shared plumbing tables, the optional shared components the service uses,
    then the service's own migrations."""
    migrations = load_migrations("shared", "shared.migrations")
    for component in components:
        migrations += load_migrations(component, SHARED_COMPONENTS[component])
    return migrations + load_migrations(service, f"{service}.migrations")


class MigrationError(RuntimeError):
    pass


async def apply_migrations(pool: asyncpg.Pool, migrations: list[Migration]) -> int:
    """Apply what is not applied yet; return how many were applied.

    Runs under a transaction-level advisory lock on the schema, so replicas that
    start together apply each migration once. An applied migration whose file
    changed since is refused: history must not be rewritten.
    """
    applied_count = 0
    async with pool.acquire() as conn, conn.transaction():
        schema = await conn.fetchval("SELECT current_schema()")
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('mfc-migrations:' || $1::text))",
            schema,
        )
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        rows = await conn.fetch(
            "SELECT component, version, name, checksum FROM schema_migrations"
        )
        done: dict[tuple[str, int], Any] = {
            (r["component"], r["version"]): r for r in rows
        }
        for migration in migrations:
            previous = done.get((migration.component, migration.version))
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: migration {migration.component}/{migration.name} "
                        "changed after it was applied; add a new migration instead"
                    )
                continue
            logger.info("applying migration %s/%s", migration.component, migration.name)
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) "
                "VALUES ($1, $2, $3, $4)",
                migration.component,
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_count += 1
    return applied_count


class Wakeup:
    """Wakes a worker loop when a NOTIFY arrives on ``channel``, and keeps listening
    across database restarts.

    LISTEN holds one pooled connection for as long as the worker runs. When the
    database restarts, that connection dies with it; a worker that did not listen
    again would be left on its poll interval for good (the fault tests found this
    in every worker). So a lost connection wakes the worker at once, and the next
    ``wait`` listens again, then wakes the worker once more for what it may have
    missed meanwhile. While the database is away, ``wait`` still returns after the
    poll interval: polling is the safety net.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._event = asyncio.Event()
        self._conn: Any = None

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._on_lost)
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._on_notify)
        await self._pool.release(conn)

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def clear(self) -> None:
        """Call before a round, so a NOTIFY that lands during it is not lost."""
        self._event.clear()

    async def wait(self, poll: float) -> None:
        """Return on a NOTIFY, a lost or regained LISTEN, or after ``poll`` seconds."""
        if self._conn is None:
            try:
                await self._listen()
            except Exception as exc:  # database still away: poll until it is back
                logger.warning(
                    "cannot LISTEN on %s (%s); polling every %.1fs",
                    self._channel,
                    exc,
                    poll,
                )
            else:
                logger.info("listening on %s again", self._channel)
                self._event.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), poll)

    async def _listen(self) -> None:
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            await self._pool.release(conn)
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    def _on_notify(self, *_: object) -> None:
        self._event.set()

    def _on_lost(self, *_: object) -> None:
        # asyncpg has already handed the pool slot back; only forget the connection.
        self._conn = None
        self._event.set()
