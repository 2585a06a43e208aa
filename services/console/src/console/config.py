"""Console settings (environment prefix ``CONSOLE_``; token checks use the same
unprefixed ``AUTH_*`` settings as the four services)."""

from datetime import timedelta

from pydantic import SecretStr
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
    session_https_only: bool = False
    """Mark the session cookie Secure (set it wherever the console is served over
    HTTPS, which is everywhere but a developer's machine)."""

    mail_inbox_url: str | None = None
    """Development only: the mail catcher's inbox, linked from every page so alert
    emails can be read and their links tried."""

    @property
    def metadata_url(self) -> str:
        return self.oidc_metadata_url or (
            self.oidc_issuer_url.rstrip("/") + "/.well-known/openid-configuration"
        )
