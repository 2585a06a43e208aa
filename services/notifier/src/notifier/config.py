"""Notifier settings (environment prefix ``NOTIFIER_``)."""

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import AlertingSettings
from shared.durations import Duration


class NotifierSettings(AlertingSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    http_port: int = 8002
    """Port of the HTTP API."""
    consumer_group: str = "notifier"
    """Kafka consumer group; replicas of one service share it."""

    watchdog_interval: Duration = timedelta(seconds=30)
    """How often the watchdog checks that every open obligation is scheduled."""
    watchdog_margin: Duration = timedelta(minutes=2)
    """A due step older than this is reported stuck."""
    watchdog_timeout: Duration = timedelta(seconds=10)
    """A watchdog round that takes longer gives up and reads unhealthy (its counts
    must not hold a snapshot that keeps VACUUM from the queues)."""
    heartbeat_url: str | None = None
    """Called (GET) after each healthy watchdog round: a dead man's switch."""
    calendar_secret: SecretStr | None = Field(default=None, min_length=16)
    """Signs each schedule's calendar feed address (``/v1/calendars/<name>.ics?key=``)
    so that calendar apps, which cannot sign in, can subscribe; none: the feed needs
    a token. Change it to revoke every address given out."""
