"""Settings every service shares. Each service subclasses with its own ``env_prefix``.

Infrastructure addresses use the unprefixed names ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` so one environment serves all four services; everything else is
``<SERVICE>_<FIELD>``. Settings are built once in ``__main__`` and passed down.
"""

from datetime import timedelta

from pydantic import Field, SecretStr
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

    shutdown_grace: Duration = timedelta(seconds=10)
    """How long a stopping service lets in-flight messages finish."""

    db_pool_min_size: int = 1
    """Fewest open database connections."""
    db_pool_max_size: int = 10
    """Most open database connections."""
