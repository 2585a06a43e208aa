"""``python -m audit.witness``: a checkpoint witness, its own process with its own
key and its own record (a file, never the log's database).

It speaks c2sp.org/tlog-witness: ``POST /add-checkpoint`` co-signs a checkpoint the
log's key signed when it extends, by a consistency proof, the latest one this witness
co-signed for that log, and refuses otherwise (``audit.domain.witnessing``).
``GET /checkpoints/{origin}`` (this project's addition) answers the latest co-signed
checkpoint, so a verifier can ask the witness what the log showed it.
"""

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, generate_latest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.domain import note, witnessing
from audit.domain.checkpoint import load_private_key, load_public_keys
from shared.serve import serve

logger = logging.getLogger(__name__)


class WitnessSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WITNESS_",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    http_host: str = "127.0.0.1"
    """Address the witness listens on."""
    http_port: int = 8005
    """Port of ``/add-checkpoint``."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    name: str = "witness.localhost/mfc"
    """The witness's key name (a schema-less URL, need not be reachable)."""
    key_file: Path = Path("witness-key.pem")
    """The witness's own Ed25519 private key (PEM): `mfc audit keygen` makes one.
    Keep it away from the log's database and its operators."""
    generate_key: bool = False
    """Create the key file if it is missing (development only)."""
    state_file: Path = Path("witness-state.json")
    """The latest co-signed checkpoint of each log (written atomically)."""
    logs: dict[str, list[Path]] = Field(default_factory=dict)
    """The logs this witness serves: JSON of origin -> the PEM public keys whose
    checkpoints it accepts (``{"missing-from-care/audit/v1": ["audit.pub"]}``)."""


class Record:
    """The witness's record: one JSON file, replaced atomically, one writer."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.lock = asyncio.Lock()
        self._seen: dict[str, witnessing.Seen] = {}
        self._notes: dict[str, str] = {}
        if path.exists():
            for origin, item in json.loads(path.read_text()).items():
                root = base64.b64decode(item["root_hash"])
                self._seen[origin] = witnessing.Seen(int(item["size"]), root)
                self._notes[origin] = item["note"]

    def get(self, origin: str) -> witnessing.Seen | None:
        return self._seen.get(origin)

    def cosigned(self, origin: str) -> str | None:
        """The latest co-signed checkpoint, as a note with this witness's line."""
        return self._notes.get(origin)

    def put(self, origin: str, seen: witnessing.Seen, cosigned_note: str) -> None:
        """Persist before answering: the file is replaced whole after an fsync,
        the directory synced; only then does the witness answer from it."""
        seen_after = {**self._seen, origin: seen}
        notes_after = {**self._notes, origin: cosigned_note}
        document = {
            o: {
                "size": s.size,
                "root_hash": base64.b64encode(s.root_hash).decode(),
                "note": notes_after[o],
            }
            for o, s in seen_after.items()
        }
        temporary = self._path.with_suffix(".tmp")
        with temporary.open("w") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._seen, self._notes = seen_after, notes_after


def create_app(
    settings: WitnessSettings, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    if settings.generate_key and not settings.key_file.exists():
        from audit.bootstrap import write_key_pair

        write_key_pair(settings.key_file)
    key = load_private_key(settings.key_file)
    logs: dict[str, list[Ed25519PublicKey]] = {
        origin: list(load_public_keys(paths).values())
        for origin, paths in settings.logs.items()
    }
    record = Record(settings.state_file)
    registry = CollectorRegistry()
    answers = Counter(
        "mfc_witness_requests",
        "add-checkpoint answers, by HTTP status",
        ["status"],
        registry=registry,
    )
    app = FastAPI(title="missing-from-care witness", version="1")

    @app.post("/add-checkpoint", response_class=PlainTextResponse)
    async def add_checkpoint(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        async with record.lock:  # check and persist together (the spec's race)
            try:
                submission = witnessing.parse_submission(body)
                origin = submission.checkpoint.origin
                seen = witnessing.check(submission, logs=logs, seen=record.get(origin))
                cosignature = note.cosign(
                    submission.text, settings.name, key, int(clock())
                )
                record.put(origin, seen, submission.text + "\n" + cosignature.line())
            except witnessing.RefusedError as refused:
                answers.labels(str(refused.status)).inc()
                logger.warning("refused a checkpoint: %s", refused)
                if refused.size is not None:
                    return PlainTextResponse(
                        f"{refused.size}\n", 409, media_type="text/x.tlog.size"
                    )
                return PlainTextResponse(f"{refused}\n", refused.status)
        answers.labels("200").inc()
        return PlainTextResponse(cosignature.line())

    @app.get("/checkpoints/{origin:path}")
    async def latest(origin: str) -> Response:
        """The latest checkpoint co-signed for ``origin``: its note with this
        witness's cosignature, which a verifier checks with the witness's key."""
        if origin not in logs:
            return PlainTextResponse(f"unknown log {origin!r}\n", 404)
        seen = record.get(origin)
        root = base64.b64encode(seen.root_hash).decode() if seen else None
        return JSONResponse(
            {
                "origin": origin,
                "size": seen.size if seen else 0,
                "root_hash": root,
                "note": record.cosigned(origin),
            }
        )

    @app.get("/vkey", response_class=PlainTextResponse)
    async def verifier_key() -> str:
        """The key verifiers configure: ``name+keyid+base64(0x04 || key)``."""
        return note.vkey(settings.name, note.COSIGNATURE_V1, key.public_key()) + "\n"

    @app.get("/healthz")
    @app.get("/readyz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain")

    return app


def main() -> None:
    settings = WitnessSettings()  # values come from the environment
    serve("witness", settings, create_app(settings))


if __name__ == "__main__":
    main()
