"""Console settings (environment prefix ``CONSOLE_``; token checks use the same
unprefixed ``AUTH_*`` settings as the four services)."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.config import TokenSettings
from shared.durations import Duration


class ConsoleSettings(TokenSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_",
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    http_host: str = "127.0.0.1"
    """Address the console listens on."""
    http_port: int = 8000
    """Port of the console."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR; logs are JSON lines on stderr."""
    public_url: str = "http://127.0.0.1:8000"
    """The console's address as people's browsers reach it (sign-in returns here;
    the identity provider must list ``<public_url>/signin/callback``)."""

    intake_url: str = "http://127.0.0.1:8001"
    """The intake service's API."""
    notifier_url: str = "http://127.0.0.1:8002"
    """The notifier's API."""
    followup_url: str = "http://127.0.0.1:8003"
    """The followup service's API."""
    audit_url: str = "http://127.0.0.1:8004"
    """The audit service's API."""
    api_timeout: Duration = timedelta(seconds=10)
    """How long a page waits for a service before it says the service is not
    answering."""

    oidc_issuer_url: str
    """The identity provider (OpenID Connect issuer); its metadata is read from
    ``<issuer>/.well-known/openid-configuration`` unless ``oidc_metadata_url`` says
    otherwise."""
    oidc_metadata_url: str | None = None
    """The provider's discovery document, where it is not under the issuer URL."""
    oidc_client_id: str = "mfc-console"
    """The console's client id at the identity provider."""
    oidc_client_secret: SecretStr | None = None
    """A confidential client's secret; none for a public client (PKCE only)."""
    oidc_scope: str = "openid profile email"
    """Scopes asked for at sign-in. Entra ID needs the API's scope here too, e.g.
    ``openid profile api://missing-from-care/access``, so that the access token is
    issued for the API audience."""

    session_secret: SecretStr
    """Key that signs the session cookie (32+ random bytes; the same on every
    replica; rotate it to sign everybody out)."""
    session_max_age: Duration = timedelta(hours=8)
    """A session ends this long after sign-in, whatever the token's lifetime."""
    session_https_only: bool | None = None
    """Mark the session cookie Secure; by default it is, unless ``public_url`` is a
    plain-HTTP address on this machine (development)."""

    time_zone: str = "UTC"
    """The agency's time zone (IANA name, e.g. ``America/New_York``): times on the
    pages are shown in it, with its abbreviation."""

    mail_inbox_url: str | None = None
    """Development only: the mail catcher's inbox, linked from every page so alert
    emails can be read and their links tried."""

    audit_public_key_file: Path | None = None
    """The audit service's checkpoint public key (PEM), pinned: the trail pages then
    check proofs against this key, not against the key the audit service itself
    publishes (which a tampered service could change)."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use e.g. America/New_York)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def secure_cookie(self) -> bool:
        if self.session_https_only is not None:
            return self.session_https_only
        host = urlsplit(self.public_url).hostname or ""
        local = host in ("127.0.0.1", "localhost", "::1")
        return not (self.public_url.startswith("http://") and local)

    @property
    def metadata_url(self) -> str:
        return self.oidc_metadata_url or (
            self.oidc_issuer_url.rstrip("/") + "/.well-known/openid-configuration"
        )
