"""The service topics' contract: every published type has a model, the AsyncAPI
document shows each, and a producer's data that drifts from its model is refused."""

import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from devtools import asyncapi
from shared import topics
from shared.published import PUBLISHED, ContractError, checked

STEP = {
    "obligation_id": str(uuid4()),
    "episode_id": str(uuid4()),
    "county_code": "NC-063",
    "kind": "ncmec_report",
    "level": 1,
    "level_name": "supervisor",
    "due_at": datetime(2026, 11, 1, tzinfo=UTC).isoformat(),
    "alert_id": None,
}


def test_the_asyncapi_document_has_a_message_for_every_published_type():
    document = asyncapi.build()
    for topic, types in PUBLISHED.items():
        listed = {
            document["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]["name"]
            for ref in document["channels"][topic]["messages"].values()
        }
        assert listed == set(types)
    sends = {
        (op["action"], op["channel"]["$ref"])
        for name, op in document["operations"].items()
        if name.startswith("notifier.")
    }
    assert ("send", f"#/channels/{topics.OBLIGATIONS}") in sends


def test_data_matching_its_model_passes_unchanged():
    assert checked(topics.OBLIGATIONS, "mfc.obligation.escalated", STEP) is STEP


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"level": "high"}, "data.level"),
        ({"surprise": 1}, "data.surprise"),
        ({"due_at": "2026-11-01T00:00:00"}, "data.due_at"),  # no time zone
    ],
)
def test_drift_from_the_model_is_refused_naming_the_field(change, named):
    with pytest.raises(ContractError, match=re.escape(named)):
        checked(topics.OBLIGATIONS, "mfc.obligation.breached", {**STEP, **change})
    missing = {k: v for k, v in STEP.items() if k != "level_name"}
    with pytest.raises(ContractError, match=r"data\.level_name"):
        checked(topics.OBLIGATIONS, "mfc.obligation.breached", missing)


def test_a_type_foreign_to_the_topic_is_refused():
    with pytest.raises(ContractError, match="not an event type"):
        checked(topics.PROMPTS, "mfc.obligation.breached", STEP)
