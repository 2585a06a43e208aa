"""Notifier settings (environment prefix ``NOTIFIER_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class NotifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", extra="ignore", frozen=True
    )

    http_port: int = 8002
    """Port of the HTTP API."""
    consumer_group: str = "notifier"
    """Kafka consumer group; replicas of one service share it."""
