"""Generated documentation: the configuration reference, the AsyncAPI document and
each service's OpenAPI document, rendered from the code itself so they cannot drift
(a unit test compares them with the files in docs/)."""

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.config import ServiceSettings, TokenSettings
from shared.durations import format_duration


def _env_name(settings: type[TokenSettings], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        if field.default_factory is dict:
            return "`{}`"
        return "**required**" if field.default_factory is None else "(built in)"
    value = field.default
    if hasattr(value, "total_seconds"):
        return f"`{format_duration(value)}`"
    if isinstance(value, frozenset):
        return f"`{','.join(sorted(value))}`"
    return f"`{value}`"


def render(services: dict[str, type[TokenSettings]]) -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings classes by `mfc docs`; do not edit by hand.",
        "Durations are plain strings (`24h`, `30m`, `7d`, `10s`) or seconds.",
        "",
    ]
    for service, settings in services.items():
        lines += [
            f"## {service}",
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
        ]
        for name, field in settings.model_fields.items():
            meaning = (field.description or "").replace("\n", " ")
            lines.append(
                f"| `{_env_name(settings, name, field)}` | {_default(field)} | {meaning} |"
            )
        lines.append("")
    return "\n".join(lines)


def settings_classes() -> dict[str, type[ServiceSettings]]:
    from audit.config import AuditSettings
    from followup.config import FollowupSettings
    from intake.config import IntakeSettings
    from notifier.config import NotifierSettings

    return {
        "intake": IntakeSettings,
        "notifier": NotifierSettings,
        "followup": FollowupSettings,
        "audit": AuditSettings,
    }


def render_all() -> str:
    from console.config import ConsoleSettings

    return render({**settings_classes(), "console": ConsoleSettings})


def openapi_documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, from its app (nothing connects: the app is
    built but not started)."""
    from audit.bootstrap import create_app as audit_app
    from followup.bootstrap import create_app as followup_app
    from intake.bootstrap import create_app as intake_app
    from notifier.bootstrap import create_app as notifier_app

    factories: dict[str, Callable[[Any], FastAPI]] = {
        "intake": intake_app,
        "notifier": notifier_app,
        "followup": followup_app,
        "audit": audit_app,
    }
    documents = {}
    for name, settings_class in settings_classes().items():
        settings = settings_class.model_validate(
            {
                "kafka_bootstrap_servers": "127.0.0.1:9092",
                "database_url": "postgresql://unused@127.0.0.1/unused",
                "counties": "NC-063",
                "auth_issuer": "https://idp.invalid",
                "auth_jwks_url": "https://idp.invalid/jwks",
                "auth_public_keys_file": None,
            }
        )
        documents[name] = factories[name](settings).openapi()
    return documents


def generated_files() -> dict[str, str]:
    """Every generated document, by path relative to the repository root."""
    from devtools.asyncapi import build
    from devtools.policydoc import render as render_coverage
    from shared.policy import default_policy_path, load_policy

    files = {
        "docs/configuration.md": render_all() + "\n",
        "docs/policy-coverage.md": render_coverage(load_policy(default_policy_path())),
        "docs/api/asyncapi.json": json.dumps(build(), indent=2, sort_keys=True) + "\n",
    }
    for name, document in openapi_documents().items():
        files[f"docs/api/{name}.openapi.json"] = (
            json.dumps(document, indent=2, sort_keys=True) + "\n"
        )
    return files
