"""A service builds its app from the policy file before it serves anything: a file
that does not load stops it at start-up with the loader's message, so no running
service ever works under a policy that did not load (there is no reload: a changed
file takes effect on restart, where the same check applies)."""

import pytest

from devtools.configdoc import settings_classes
from followup.bootstrap import create_app as followup_app
from intake.bootstrap import create_app as intake_app
from notifier.bootstrap import create_app as notifier_app
from shared.policy import PolicyError, default_policy_path

FACTORIES = {"intake": intake_app, "notifier": notifier_app, "followup": followup_app}


@pytest.mark.parametrize("service", sorted(FACTORIES))
def test_a_service_does_not_start_with_a_policy_that_does_not_load(service, tmp_path):
    broken = tmp_path / "policy.toml"
    broken.write_bytes(
        default_policy_path()
        .read_bytes()
        .replace(
            b'due = "2 business days"', b'due = "2 business days"\ncalendar = "XX"'
        )
    )
    settings = settings_classes()[service].model_validate(
        {
            "kafka_bootstrap_servers": "127.0.0.1:9092",
            "database_url": "postgresql://unused@127.0.0.1/unused",
            "counties": "GA-121",
            "auth_issuer": "https://idp.invalid",
            "auth_jwks_url": "https://idp.invalid/jwks",
            "auth_public_keys_file": None,
            "policy_path": str(broken),
        }
    )
    with pytest.raises(
        PolicyError, match=rf"{broken}: .*court_runaway_report: calendar"
    ):
        FACTORIES[service](settings)
