"""Settings every service shares. Each service subclasses with its own ``env_prefix``.

Infrastructure addresses use the unprefixed names ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` so one environment serves all four services; everything else is
``<SERVICE>_<FIELD>``. Settings are built once in ``__main__`` and passed down.
"""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.durations import Duration


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    kafka_bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    """Kafka brokers, ``host:port[,host:port]``."""
    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    """PostgreSQL URL; each service uses its own schema in this database."""

    http_host: str = "127.0.0.1"
    """Address the HTTP API listens on."""
    http_port: int
    """Port of the HTTP API."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stderr."""

    consumer_group: str
    """Kafka consumer group; replicas of one service share it."""
    db_schema: str | None = None
    """PostgreSQL schema of this service's tables; the service's name by default."""
    create_topics: bool = True
    """Create missing topics at start-up (off where an operator manages topics)."""

    handler_max_attempts: int = Field(default=5, ge=1, le=50)
    """Attempts per message before it goes to the dead-letter topic."""
    handler_initial_backoff: Duration = timedelta(milliseconds=200)
    """Wait after the first failed attempt."""
    handler_max_backoff: Duration = timedelta(seconds=10)
    """Longest wait between attempts (the wait doubles from the initial one)."""

    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    """Most outbox rows published in one round."""
    outbox_poll_interval: Duration = timedelta(seconds=1)
    """Safety-net poll of the outbox; NOTIFY wakes the relay sooner."""

    consumer_lag_interval: Duration = timedelta(seconds=5)
    """How often ``mfc_consumer_lag`` is measured (a broker round trip each)."""

    shutdown_grace: Duration = timedelta(seconds=10)
    """How long a stopping service lets in-flight messages finish."""

    db_pool_min_size: int = 1
    """Fewest open database connections."""
    db_pool_max_size: int = 10
    """Most open database connections."""


class AlertingSettings(ServiceSettings):
    """Settings of the services that alert people (notifier, followup)."""

    policy_path: Path = Field(default_factory=lambda: _default_policy())
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
    delivery_max_attempts: int = Field(default=6, ge=1, le=50)
    """Attempts per delivery before it is failed and mfc.alert.failed is sent."""
    delivery_initial_backoff: Duration = timedelta(seconds=1)
    """Wait after the first failed delivery attempt (doubling)."""
    timer_poll_interval: Duration = timedelta(milliseconds=500)
    """How often due steps are looked for; bounds alert lateness."""

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> "AlertingSettings":
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_secret is required with webhook_url")
        return self


def _default_policy() -> Path:
    from shared.policy import default_policy_path

    return default_policy_path()
