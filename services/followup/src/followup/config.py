"""Followup settings (environment prefix ``FOLLOWUP_``)."""

from datetime import timedelta

from pydantic_settings import SettingsConfigDict

from shared.config import AlertingSettings
from shared.durations import Duration


class FollowupSettings(AlertingSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOLLOWUP_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    http_port: int = 8003
    """Port of the HTTP API."""
    consumer_group: str = "followup"
    """Kafka consumer group; replicas of one service share it."""
    watchdog_interval: Duration = timedelta(seconds=15)
    """How often the gauges of open and overdue prompts are refreshed."""
