"""The people's side of the development stack: an OpenID Connect provider, a mail
catcher and the console, next to the four services (``mfc dev``; the console's
end-to-end tests run it too).

The services are configured exactly as in production, only against the development
provider: ``AUTH_ISSUER`` is its URL and ``AUTH_JWKS_URL`` its key set, so the access
tokens people get at sign-in are what the services check. Alert emails go to the mail
catcher, whose inbox the console links to, and alert links point at the console.
"""

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from devtools.devstack import ServiceProcess, ServiceSet, wait_for_port
from devtools.devtokens import dev_issuer, dev_key_paths, ensure_dev_key, mint


@dataclass(frozen=True)
class FrontDoorPorts:
    """The usual development ports (docs: SPEC, section 10)."""

    console: int = 8000
    idp: int = 8010
    smtp: int = 1025
    mail: int = 8025

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "FrontDoorPorts":
        """``CONSOLE_HTTP_PORT``, ``MFC_IDP_PORT``, ``MFC_SMTP_PORT`` and
        ``MFC_MAIL_UI_PORT`` (the compose file's names) move them."""
        return cls(
            console=int(env.get("CONSOLE_HTTP_PORT") or cls.console),
            idp=int(env.get("MFC_IDP_PORT") or cls.idp),
            smtp=int(env.get("MFC_SMTP_PORT") or cls.smtp),
            mail=int(env.get("MFC_MAIL_UI_PORT") or cls.mail),
        )


class FrontDoor:
    def __init__(
        self,
        *,
        state_dir: Path,
        ports: FrontDoorPorts | None = None,
        private_key_pem: bytes | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from devtools.devidp import DevIdentityProvider
        from devtools.devmail import DevMailCatcher

        self.state_dir = state_dir
        self.ports = ports = ports or FrontDoorPorts.from_env()
        self.echo = echo
        if private_key_pem is None:
            ensure_dev_key(state_dir / "auth")
            private_key_pem = dev_key_paths(state_dir / "auth")[0].read_bytes()
        self._private_key_pem = private_key_pem
        self.issuer = dev_issuer({"MFC_IDP_PORT": str(ports.idp)})
        self.idp = DevIdentityProvider(
            issuer=self.issuer, private_key_pem=private_key_pem, port=ports.idp
        )
        self.mail = DevMailCatcher(smtp_port=ports.smtp, http_port=ports.mail)
        self.console: ServiceProcess | None = None

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.console}"

    def service_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with what the services need to trust the development provider,
        mail the catcher and link to the console."""
        env = {k: v for k, v in base.items() if k not in ("AUTH_PUBLIC_KEYS_FILE",)}
        env.update(
            {
                "AUTH_ISSUER": self.issuer,
                "AUTH_JWKS_URL": f"{self.issuer}/jwks",
            }
        )
        for service in ("NOTIFIER", "FOLLOWUP"):
            env.setdefault(f"{service}_SMTP_HOST", "127.0.0.1")
            env.setdefault(f"{service}_SMTP_PORT", str(self.ports.smtp))
            env.setdefault(
                f"{service}_EPISODE_URL_TEMPLATE",
                f"{self.console_url}/episodes/{{episode_id}}",
            )
        env.setdefault(
            "NOTIFIER_ALERT_URL_TEMPLATE", f"{self.console_url}/alerts/{{alert_id}}"
        )
        return env

    def start(self) -> None:
        """The provider and the mail catcher: before the services."""
        # One line per request to the provider would bury the services' output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.idp.start()
        self.mail.start()

    def start_console(self, services: ServiceSet, env: Mapping[str, str]) -> None:
        """The console, once the services it calls are up."""
        urls = {
            f"CONSOLE_{name.upper()}_URL": services[name].url
            for name in ("intake", "notifier", "followup", "audit")
        }
        console_env = {
            **env,
            **urls,
            "CONSOLE_HTTP_PORT": str(self.ports.console),
            "CONSOLE_PUBLIC_URL": self.console_url,
            "CONSOLE_OIDC_ISSUER_URL": self.issuer,
            "CONSOLE_SESSION_SECRET": self._session_secret(),
            "CONSOLE_MAIL_INBOX_URL": self.mail.url,
            "CONSOLE_TIME_ZONE": env.get("CONSOLE_TIME_ZONE", "America/New_York"),
            "PYTHONUNBUFFERED": "1",
        }
        pinned = self._audit_public_key(services)
        if pinned is not None:
            console_env["CONSOLE_AUDIT_PUBLIC_KEY_FILE"] = str(pinned)
        self.console = ServiceProcess(
            name="console",
            port=self.ports.console,
            env=console_env,
            log_path=self.state_dir / "logs" / "console.log",
            echo=self.echo,
        )
        self.console.start()

    def console_alive(self) -> bool:
        return self.console is not None and self.console.alive()

    def wait_ready(self, *, timeout: float = 60) -> None:
        assert self.console is not None
        wait_for_port(self.ports.console, timeout=timeout)
        if not self.console.alive():
            raise RuntimeError(f"console exited; see {self.console.log_path}")

    def seed_demo(self, services: ServiceSet, *, county: str = "NC-063") -> str | None:
        """On a stack with no episode yet, report one invented missing child, so
        that a newcomer has an alert to open and acknowledge. Returns its id, or
        None when there was something already (``MFC_DEV_DEMO=0`` turns it off)."""
        private_key = dev_key_paths(self.state_dir / "auth")[0]
        token = mint(
            self._private_key_pem or private_key.read_bytes(),
            subject="demo-county-system",
            roles=["county_system"],
            counties=[county],
            issuer=self.issuer,
            ttl=timedelta(minutes=5),
        )
        headers = {"Authorization": f"Bearer {token}"}
        intake = services["intake"].url
        found = httpx.get(
            f"{intake}/v1/episodes", params={"limit": 1}, headers=headers, timeout=10
        )
        found.raise_for_status()
        if found.json()["episodes"]:
            return None
        created = httpx.post(
            f"{intake}/v1/episodes",
            json=demo_report(county, datetime.now(UTC)),
            headers=headers,
            timeout=10,
        )
        created.raise_for_status()
        episode_id: str = created.json()["id"]
        return episode_id

    def _audit_public_key(self, services: ServiceSet) -> Path | None:
        """The audit checkpoint key's public half, for the console to pin (as an
        agency pins the key it was given, not the one the service publishes)."""
        private = services["audit"].env.get("AUDIT_SIGNING_KEY_FILE")
        if not private or not Path(private).exists():
            return None
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(
            Path(private).read_bytes(), password=None
        )
        path = self.state_dir / "auth" / "audit-public-key.pem"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
        return path

    def _session_secret(self) -> str:
        """Kept with the data, so sessions survive a restart of ``mfc dev``."""
        path = self.state_dir / "auth" / "console-session-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
            self.console = None
        self.mail.stop()
        self.idp.stop()

    def describe(self) -> str:
        from devtools.devidp import DEV_USERS

        users = ", ".join(f"{u.name} ({', '.join(u.roles)})" for u in DEV_USERS)
        return "\n".join(
            [
                f"  console   {self.console_url}   <- start here: sign in and act on alerts",
                f"  sign-in   {self.issuer}   (development provider; users: {users})",
                f"  mail      {self.mail.url}   (every alert email; SMTP 127.0.0.1:{self.ports.smtp})",
            ]
        )


def demo_report(county: str, now: datetime) -> dict[str, object]:
    """An invented child (no real person), reported an hour and a half after the
    agency learned of it: the law-enforcement duty counts down, alerts go out."""
    learned = now - timedelta(minutes=90)
    return {
        "county_code": county,
        "case_id": f"DEMO-{now:%Y%m%d-%H%M%S}",
        "child": {
            "first_name": "Alex",
            "last_name": "Example",
            "date_of_birth": "2011-04-02",
            "sex": "female",
            "height_cm": 152,
            "weight_kg": 45,
            "hair_color": "brown",
            "eye_color": "green",
        },
        "last_seen_at": (learned - timedelta(hours=3)).isoformat(),
        "discovered_at": (learned - timedelta(minutes=30)).isoformat(),
        "agency_learned_at": learned.isoformat(),
        "circumstance": "runaway",
        "last_known_location": "Bus station, Main Street",
        "placement_type": "foster_home",
        "endangerments": {"pregnant": False, "suicidal_tendencies": "unknown"},
        "caseworker": {
            "id": "cw-17",
            "name": "Casey Worker",
            "email": "casey.worker@example.org",
        },
        "supervisor": {
            "id": "sv-03",
            "name": "Sam Supervisor",
            "email": "sam.supervisor@example.org",
        },
    }


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Run the development provider unless an identity provider is configured."""
    return not env.get("AUTH_JWKS_URL") and not env.get("AUTH_PUBLIC_KEYS_FILE")
