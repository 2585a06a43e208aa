"""Audit settings (environment prefix ``AUDIT_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", frozen=True)

    http_port: int = 8004
    consumer_group: str = "audit"
