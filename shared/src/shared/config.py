"""Settings every service shares. Each service subclasses with its own ``env_prefix``.

Infrastructure addresses use the unprefixed names ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` so one environment serves all four services; everything else is
``<SERVICE>_<FIELD>``. Settings are built once in ``__main__`` and passed down.
"""

import base64
import binascii
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.durations import Duration

if TYPE_CHECKING:
    from shared.kafka import KafkaSecurity


class TokenSettings(BaseSettings):
    """How bearer tokens are checked: the services and the console read the same
    unprefixed ``AUTH_*`` settings."""

    model_config = SettingsConfigDict(
        extra="ignore",
        # An empty variable means "not set" (compose passes ${VAR:-} as "").
        env_ignore_empty=True,
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
        # A refused setting is named, never repeated: it may be a secret, and the
        # error goes to the start-up log.
        hide_input_in_errors=True,
    )

    auth_issuer: str = Field(validation_alias="AUTH_ISSUER")
    """The ``iss`` every bearer token must carry (your identity provider)."""
    auth_audience: str = Field(
        default="missing-from-care", validation_alias="AUTH_AUDIENCE"
    )
    """The ``aud`` every bearer token must carry."""
    auth_jwks_url: str | None = Field(default=None, validation_alias="AUTH_JWKS_URL")
    """The identity provider's JWKS URL (keys cached, refetched for an unknown kid)."""
    auth_public_keys_file: Path | None = Field(
        default=None, validation_alias="AUTH_PUBLIC_KEYS_FILE"
    )
    """Instead of a JWKS URL: a file of static public keys, a JWKS document or PEM
    blocks (several during a key rotation)."""
    auth_algorithms: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"RS256", "ES256", "EdDSA"}),
        validation_alias="AUTH_ALGORITHMS",
    )
    """Signature algorithms accepted, comma-separated; asymmetric ones only."""
    auth_leeway: Duration = Field(
        default=timedelta(seconds=30), validation_alias="AUTH_LEEWAY"
    )
    """Clock drift allowed when checking a token's ``exp`` and ``nbf``."""
    auth_roles_claim: str = Field(default="roles", validation_alias="AUTH_ROLES_CLAIM")
    """The claim that lists the caller's roles."""
    auth_counties_claim: str = Field(
        default="counties", validation_alias="AUTH_COUNTIES_CLAIM"
    )
    """The claim that lists the caller's county codes (``*``: every county)."""

    @field_validator("auth_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: frozenset[str]) -> frozenset[str]:
        refused = sorted(a for a in value if a.lower() == "none" or a.startswith("HS"))
        if refused:
            raise ValueError(
                f"not allowed: {', '.join(refused)} (the services hold public keys only)"
            )
        if not value:
            raise ValueError("allow at least one algorithm, e.g. ES256")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> "TokenSettings":
        if (self.auth_jwks_url is None) == (self.auth_public_keys_file is None):
            raise ValueError(
                "set exactly one of AUTH_JWKS_URL and AUTH_PUBLIC_KEYS_FILE"
            )
        return self


class ServiceSettings(TokenSettings):
    model_config = SettingsConfigDict(
        extra="ignore",
        # An empty variable means "not set" (compose passes ${VAR:-} as "").
        env_ignore_empty=True,
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
        # A refused setting is named, never repeated: it may be a secret, and the
        # error goes to the start-up log.
        hide_input_in_errors=True,
    )

    kafka_bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    """Kafka brokers, ``host:port[,host:port]``."""
    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    """PostgreSQL URL; each service uses its own schema in this database."""

    kafka_security_protocol: Literal[
        "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
    ] = Field(default="PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL")
    """How to reach the brokers: SASL_SSL in production (see docs/security.md)."""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = (
        Field(default=None, validation_alias="KAFKA_SASL_MECHANISM")
    )
    """SASL mechanism (with a SASL_* protocol)."""
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias="KAFKA_SASL_USERNAME"
    )
    """SASL user: one per service, so ACLs can tell them apart."""
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias="KAFKA_SASL_PASSWORD"
    )
    """SASL password (from a secret store or file, never the repository)."""
    kafka_ssl_cafile: Path | None = Field(
        default=None, validation_alias="KAFKA_SSL_CAFILE"
    )
    """CA bundle that signed the brokers' certificates (with SSL or SASL_SSL)."""
    kafka_ssl_certfile: Path | None = Field(
        default=None, validation_alias="KAFKA_SSL_CERTFILE"
    )
    """Client certificate for mutual TLS."""
    kafka_ssl_keyfile: Path | None = Field(
        default=None, validation_alias="KAFKA_SSL_KEYFILE"
    )
    """Private key of the client certificate."""

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

    consumer_batch_size: int = Field(default=100, ge=1, le=10_000)
    """Most events a consumer handles in one transaction (the notifier, followup and
    intake's projection)."""

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

    max_message_bytes: int = Field(default=256 * 1024, ge=1024, le=512 * 1024)
    """Largest HTTP request body (answered 413 past it) and largest message on
    mfc.inbound.v1 (dead-lettered past it) the service accepts, in bytes; at most
    512 KiB, so that a dead letter holding a whole message fits in Kafka's default
    1 MB."""

    metrics_require_token: bool = False
    """Serve ``/metrics`` only to a token with the ``metrics`` or ``admin`` role."""

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> "ServiceSettings":
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism
            and self.kafka_sasl_username
            and self.kafka_sasl_password
        ):
            raise ValueError(
                "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD "
                f"are required with {self.kafka_security_protocol}"
            )
        return self

    def kafka_security(self) -> "KafkaSecurity":
        from shared.kafka import KafkaSecurity

        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password.get_secret_value()
            if self.kafka_sasl_password
            else None,
            cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile,
            keyfile=self.kafka_ssl_keyfile,
        )


class AlertingSettings(ServiceSettings):
    """Settings of the services that alert people (notifier, followup)."""

    policy_path: Path = Field(default_factory=lambda: _default_policy())
    """The jurisdiction policy file (TOML); the shipped one by default."""
    episode_url_template: str = "http://127.0.0.1:8000/episodes/{episode_id}"
    """The console page of an episode, which every alert links to."""
    alert_url_template: str = "http://127.0.0.1:8000/alerts/{alert_id}"
    """The console page of one alert, which every alert links to (the notifier's:
    followup's prompt alerts link to their episode)."""
    webhook_url: str | None = None
    """Where alerts are POSTed as signed JSON; none: no webhook delivery."""
    webhook_secret: SecretStr | None = None
    """Standard Webhooks signing secret(s), ``whsec_`` + base64 of 24-64 random bytes
    (required with webhook_url). During a rotation give the new and the old one,
    separated by a space: every webhook then carries a signature by each."""
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

    @field_validator("episode_url_template", "alert_url_template")
    @classmethod
    def _template_names_its_id(cls, value: str, info: ValidationInfo) -> str:
        # A template naming another placeholder would fail as each alert is sent,
        # so it fails at start-up instead.
        placeholder = (
            "alert_id" if info.field_name == "alert_url_template" else "episode_id"
        )
        try:
            value.format(**{placeholder: "x"})
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                f"must be a URL whose only placeholder is {{{placeholder}}}"
            ) from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _standard_webhook_secrets(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for n, secret in enumerate(value.get_secret_value().split(), start=1):
                problem = webhook_secret_problem(secret)
                if problem:
                    raise ValueError(
                        f"secret {n}: {problem}; make one with: python -c "
                        '\'import base64,secrets;print("whsec_"+base64.b64encode'
                        "(secrets.token_bytes(32)).decode())'"
                    )
            if not value.get_secret_value().split():
                raise ValueError("is empty")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> "AlertingSettings":
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_secret is required with webhook_url")
        return self


def webhook_secret_problem(secret: str) -> str | None:
    """What is wrong with a Standard Webhooks secret, or None (the secret itself is
    never repeated in the answer)."""
    if not secret.startswith("whsec_"):
        return "must start with whsec_ (a Standard Webhooks secret)"
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return "after whsec_ it must be base64"
    if not 24 <= len(key) <= 64:
        return f"must hold 24 to 64 bytes, not {len(key)}"
    return None


def _default_policy() -> Path:
    from shared.policy import default_policy_path

    return default_policy_path()
