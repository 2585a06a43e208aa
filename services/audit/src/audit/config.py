"""Audit settings (environment prefix ``AUDIT_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


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
