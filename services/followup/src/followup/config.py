"""Followup settings (environment prefix ``FOLLOWUP_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class FollowupSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOLLOWUP_", extra="ignore", frozen=True
    )

    http_port: int = 8003
    """Port of the HTTP API."""
    consumer_group: str = "followup"
    """Kafka consumer group; replicas of one service share it."""
