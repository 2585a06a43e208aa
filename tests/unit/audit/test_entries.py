"""Redaction of personal fields and the canonical leaf content."""

from audit.domain.entries import contains_personal_fields, entry_leaf_hash, redact
from tests.conftest import make_report


def test_personal_fields_are_redacted_wherever_they_are():
    event = {
        "type": "mfc.episode.reported",
        "data": {**make_report(), "episode_id": "e"},
    }
    shown = redact(event)
    child = shown["data"]["child"]
    assert child["first_name"] == child["last_name"] == "[redacted]"
    assert child["date_of_birth"] == child["photo_url"] == "[redacted]"
    assert shown["data"]["endangerments"] == "[redacted]"
    assert child["height_cm"] == 150  # descriptive, not identifying alone
    assert shown["data"]["case_id"] == event["data"]["case_id"]
    assert "Testchild" not in str(shown)
    assert contains_personal_fields(event)
    assert not contains_personal_fields({"data": {"kind": "ncmec_report"}})
    assert event["data"]["child"]["first_name"] == "Jordan"  # the input is untouched


def test_the_leaf_ignores_key_order_and_number_spelling():
    a = {"b": 1, "a": {"y": 150.0, "x": [1, 2]}}
    b = {"a": {"x": [1, 2], "y": 150}, "b": 1}
    assert entry_leaf_hash(seq=1, topic="t", event=a) == entry_leaf_hash(
        seq=1, topic="t", event=b
    )
    assert entry_leaf_hash(seq=1, topic="t", event=a) != entry_leaf_hash(
        seq=2, topic="t", event=a
    )
