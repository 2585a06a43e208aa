"""The notifier's announcement of its policy file to the trail."""

import hashlib
from datetime import UTC, datetime, timedelta

from shared import topics
from shared.adoption import adopted, policy_event_id
from shared.clock import ManualClock
from shared.policy import default_policy_path, load_policy, parse_policy
from shared.published import PolicyEvent, checked

POLICY = load_policy(default_policy_path())


def test_the_announcement_carries_the_file_as_loaded_and_meets_the_contract():
    event = adopted(
        POLICY, source="test/notifier", clock=ManualClock(datetime.now(UTC))
    )
    assert event.type == PolicyEvent.ADOPTED
    checked(topics.POLICIES, event.type, event.data)  # raises if it did not
    content = event.data["content"].encode()
    assert hashlib.sha256(content).hexdigest() == event.data["digest"] == POLICY.digest
    assert event.subject == POLICY.digest
    assert event.data["file_name"] == "default.toml"


def test_every_replica_and_restart_announces_the_same_event_id_per_version():
    now = datetime.now(UTC)
    first = adopted(POLICY, source="a", clock=ManualClock(now))
    later = adopted(POLICY, source="b", clock=ManualClock(now + timedelta(days=3)))
    assert first.id == later.id == policy_event_id(POLICY.digest)
    edited = parse_policy(POLICY.content + b"\n# edited\n")
    assert adopted(edited, source="a", clock=ManualClock(now)).id != first.id
