"""Audit settings (environment prefix ``AUDIT_``)."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings
from shared.durations import Duration


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUDIT_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    http_port: int = 8004
    """Port of the HTTP API."""
    consumer_group: str = "audit"
    """Kafka consumer group; replicas of one service share it."""
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Most events appended in one transaction."""
    signing_key_file: Path = Path("audit-signing-key.pem")
    """Ed25519 private key (PEM) that signs checkpoints; `mfc audit keygen` makes one."""
    generate_signing_key: bool = False
    """Create the signing key file if it is missing (development only)."""
    trusted_public_keys: list[Path] = Field(default_factory=list)
    """More public keys (PEM) whose checkpoints verify, e.g. the keys of before a
    rotation; the signing key's own public key is always trusted."""
    checkpoint_dir: Path = Path("audit-checkpoints")
    """Append-only directory that receives a copy of every checkpoint, outside the
    database (mount storage the database's operators cannot rewrite)."""
    checkpoint_interval: Duration = timedelta(minutes=1)
    """How often a checkpoint is signed when the log has grown."""
    checkpoint_max_age: Duration = timedelta(hours=1)
    """A checkpoint is signed at least this often, grown or not (freshness)."""
    witness_url: str | None = None
    """A C2SP witness that co-signs each checkpoint (``python -m audit.witness``,
    run apart from this service and its database, or an external witness). Unset:
    checkpoints are not witnessed."""
    witness_keys: list[str] = Field(default_factory=list)
    """The verifier keys (``name+keyid+base64``, the witness's ``GET /vkey``) of the
    witnesses whose cosignatures verify checks, as a JSON list. Required with
    ``witness_url``: only cosignatures by these keys are kept."""

    @model_validator(mode="after")
    def _witness_keys_with_its_url(self) -> "AuditSettings":
        if self.witness_url and not self.witness_keys:
            raise ValueError(
                "AUDIT_WITNESS_URL needs AUDIT_WITNESS_KEYS: the witness's verifier key "
                "(its GET /vkey, or mfc audit witness-key), so that only its "
                "cosignatures are kept"
            )
        return self
