"""Render the configuration reference (docs/configuration.md) from the settings
classes themselves, so the documentation cannot drift from the code."""

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.config import ServiceSettings
from shared.durations import format_duration


def _env_name(settings: type[ServiceSettings], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        return "**required**"
    value = field.default
    if hasattr(value, "total_seconds"):
        return f"`{format_duration(value)}`"
    return f"`{value}`"


def render(services: dict[str, type[ServiceSettings]]) -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings classes by `mfc config-doc`; do not edit by hand.",
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


def render_all() -> str:
    from audit.config import AuditSettings
    from followup.config import FollowupSettings
    from intake.config import IntakeSettings
    from notifier.config import NotifierSettings

    return render(
        {
            "intake": IntakeSettings,
            "notifier": NotifierSettings,
            "followup": FollowupSettings,
            "audit": AuditSettings,
        }
    )
