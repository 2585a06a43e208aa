"""Notifier settings (environment prefix ``NOTIFIER_``)."""

from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings
from shared.durations import Duration
from shared.policy import default_policy_path


class NotifierSettings(ServiceSettings):
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

    policy_path: Path = default_policy_path()
    """The jurisdiction policy file (TOML); the shipped one by default."""
    episode_url_template: str = "http://127.0.0.1:8001/v1/episodes/{episode_id}"
    """The link every alert carries."""

    webhook_url: str | None = None
    """Where alerts are POSTed as signed JSON; none: no webhook delivery."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key for the X-MFC-Signature header (required with webhook_url)."""
    smtp_host: str | None = None
    """SMTP server for alert emails; none: no email delivery."""
    smtp_port: int = 25
    """SMTP port."""
    smtp_sender: str = "missing-from-care@localhost"
    """From address of alert emails."""

    delivery_max_attempts: int = 6
    """Attempts per delivery before it is failed and mfc.alert.failed is sent."""
    delivery_initial_backoff: Duration = timedelta(seconds=1)
    """Wait after the first failed delivery attempt (doubling)."""
    timer_poll_interval: Duration = timedelta(milliseconds=500)
    """How often due steps are looked for; bounds alert lateness."""

    watchdog_interval: Duration = timedelta(seconds=30)
    """How often the watchdog checks that every open obligation is scheduled."""
    watchdog_margin: Duration = timedelta(minutes=2)
    """A due step older than this is reported stuck."""
    heartbeat_url: str | None = None
    """Called (GET) after each healthy watchdog round: a dead man's switch."""
