from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from devtools.configdoc import generated_files
from intake.config import IntakeSettings

REQUIRED = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "DATABASE_URL": "postgresql://x@/y",
}


def test_settings_come_from_prefixed_and_shared_variables(monkeypatch):
    for key, value in {
        **REQUIRED,
        "INTAKE_COUNTIES": "nc-063, MO-510",
        "INTAKE_HANDLER_MAX_BACKOFF": "30s",
    }.items():
        monkeypatch.setenv(key, value)
    settings = IntakeSettings()
    assert settings.counties == frozenset({"NC-063", "MO-510"})
    assert settings.handler_max_backoff == timedelta(seconds=30)
    assert settings.database_url.get_secret_value() == "postgresql://x@/y"
    assert "postgresql" not in repr(settings)


def test_a_missing_required_setting_fails_at_start_up(monkeypatch):
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("INTAKE_COUNTIES", raising=False)
    with pytest.raises(ValidationError, match="counties"):
        IntakeSettings()


def test_unknown_county_codes_are_refused(monkeypatch):
    for key, value in {**REQUIRED, "INTAKE_COUNTIES": "NC-063,NC-999"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="NC-999"):
        IntakeSettings()


def test_generated_docs_are_up_to_date():
    root = Path(__file__).parents[3]
    for relative, text in generated_files().items():
        assert (root / relative).read_text() == text, (
            f"{relative} is stale: run .venv/bin/mfc docs"
        )


def test_kafka_security_settings_reach_every_kind_of_client(monkeypatch, tmp_path):
    from faststream.security import SASLScram512

    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("INTAKE_COUNTIES", "NC-063")
    assert IntakeSettings().kafka_security().for_faststream() is None
    assert IntakeSettings().kafka_security().client_options() == {
        "security_protocol": "PLAINTEXT"
    }
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        IntakeSettings()
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "mfc-intake")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-a-secret-store")
    settings = IntakeSettings()
    assert "from-a-secret-store" not in repr(settings)
    options = settings.kafka_security().client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "mfc-intake"
    assert options["sasl_plain_password"] == "from-a-secret-store"
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    security = settings.kafka_security().for_faststream()
    assert isinstance(security, SASLScram512)
    assert security.use_ssl


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("my-shared-password", "must start with whsec_"),
        ("whsec_not-base64!", "after whsec_ it must be base64"),
        ("whsec_c2hvcnQ=", "must hold 24 to 64 bytes, not 5"),
    ],
)
def test_a_webhook_secret_that_is_not_a_standard_webhooks_one_is_refused(
    monkeypatch, secret, problem
):
    from notifier.config import NotifierSettings

    for key, value in {
        **REQUIRED,
        "NOTIFIER_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
        "NOTIFIER_WEBHOOK_SECRET": f"whsec_{'A' * 44} {secret}",
    }.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as refused:
        NotifierSettings()
    message = str(refused.value)
    assert f"secret 2: {problem}" in message
    assert "make one with" in message
    assert secret not in message  # a secret is never repeated back


def test_during_a_rotation_two_webhook_secrets_are_accepted(monkeypatch):
    from notifier.config import NotifierSettings

    new, old = f"whsec_{'A' * 44}", f"whsec_{'B' * 44}"
    for key, value in {
        **REQUIRED,
        "NOTIFIER_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
        "NOTIFIER_WEBHOOK_SECRET": f"{new} {old}",
    }.items():
        monkeypatch.setenv(key, value)
    secret = NotifierSettings().webhook_secret
    assert secret is not None
    assert secret.get_secret_value().split() == [new, old]
