"""Audit's composition root."""

from pathlib import Path

import asyncpg
from fastapi import FastAPI

from audit.adapters.outside import CheckpointDirectory
from audit.adapters.witness import WitnessClient
from audit.config import AuditSettings
from audit.domain import checkpoint as signing
from audit.domain import note
from audit.entrypoints import http, stream
from audit.handlers import AuditMetrics, Checkpointer, Keys
from shared.clock import Clock, SystemClock
from shared.runtime import ServiceRuntime, add_ops_routes


def load_keys(settings: AuditSettings) -> Keys:
    """The signing key (made first if the settings allow) and the trusted keys."""
    path = settings.signing_key_file
    if settings.generate_signing_key and not path.exists():
        write_key_pair(path)
    key = signing.load_private_key(path)
    trusted = signing.load_public_keys(list(settings.trusted_public_keys))
    trusted[signing.key_id(key.public_key())] = key.public_key()
    witnesses = tuple(note.parse_vkey(v) for v in settings.witness_keys)
    return Keys(signing=key, trusted=trusted, witnesses=witnesses)


def write_key_pair(path: Path) -> Path:
    """Write a new Ed25519 key (mode 0600) and its public key beside it (``.pub``)."""
    key = signing.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(signing.private_pem(key))
    public = path.with_suffix(".pub")
    public.write_bytes(signing.public_pem(key.public_key()))
    return public


def create_app(settings: AuditSettings, *, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()
    runtime = ServiceRuntime(
        "audit",
        settings,
        clock,
        # The service appends and reads; it cannot change or remove entries.
        session_role="{schema}_appender",
    )
    metrics = AuditMetrics(runtime.registry, clock)
    directory = CheckpointDirectory(settings.checkpoint_dir)
    workers: dict[str, Checkpointer] = {}
    loaded: dict[str, Keys] = {}

    def make_checkpointer(pool: asyncpg.Pool) -> Checkpointer:
        # Keys are read at start-up, not when the app is built (docs, tests).
        loaded["keys"] = load_keys(settings)
        workers["checkpointer"] = Checkpointer(
            pool,
            keys=loaded["keys"],
            directory=directory,
            clock=clock,
            metrics=metrics,
            interval=settings.checkpoint_interval.total_seconds(),
            max_age=settings.checkpoint_max_age.total_seconds(),
            witness=WitnessClient(settings.witness_url)
            if settings.witness_url
            else None,
        )
        return workers["checkpointer"]

    runtime.add_worker(make_checkpointer)
    stream.register(runtime, metrics)
    app = FastAPI(
        title="missing-from-care audit", version="1", lifespan=runtime.lifespan
    )
    app.include_router(
        http.create_router(
            runtime,
            keys=lambda: loaded["keys"],
            directory=directory,
            checkpointer=lambda: workers["checkpointer"],
            metrics=metrics,
        )
    )
    add_ops_routes(app, runtime)
    return app
