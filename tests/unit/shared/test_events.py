import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.events import (
    CANONICAL_DATA,
    INBOUND_DATA,
    CloudEvent,
    EpisodeReportedData,
    EventType,
    InvalidEventError,
)
from tests.conftest import make_report

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_cloudevent_round_trips_through_bytes():
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject="abc",
        data={"x": 1},
        time=NOW,
    )
    again = CloudEvent.from_bytes(event.to_bytes())
    assert again == event
    document = json.loads(event.to_bytes())
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert document["time"].endswith("Z")


def test_cloudevent_keeps_extension_attributes():
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "county/NC-063",
            "type": "t",
            "time": NOW.isoformat(),
            "partitionkey": "episode-1",
        }
    ).encode()
    assert (
        json.loads(CloudEvent.from_bytes(raw).to_bytes())["partitionkey"] == "episode-1"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "not a JSON document"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"specversion": "1.0"}', "id: Field required"),
        (
            b'{"specversion":"0.3","id":"1","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}',
            "specversion",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-01-01T00:00:00"}',
            "time: Input should have timezone info",
        ),
    ],
)
def test_from_bytes_names_what_is_wrong(raw, message):
    with pytest.raises(InvalidEventError, match=message):
        CloudEvent.from_bytes(raw)


def test_data_as_names_each_bad_field_under_data():
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED,
        source="county/NC-063",
        subject=None,
        data=make_report(county_code="north carolina", child={"sex": "robot"}),
        time=NOW,
    )
    with pytest.raises(InvalidEventError) as caught:
        event.data_as(EpisodeReportedData)
    assert "data.county_code" in str(caught.value)
    assert "data.child.sex" in str(caught.value)


def test_report_times_must_be_in_order():
    learned = NOW
    report = make_report(
        last_seen_at=learned.isoformat(),
        discovered_at=(learned - timedelta(hours=1)).isoformat(),
        agency_learned_at=learned.isoformat(),
    )
    with pytest.raises(
        ValidationError, match=r"discovered_at must not be before last_seen_at"
    ) as caught:
        EpisodeReportedData.model_validate(report)
    assert [e["loc"] for e in caught.value.errors()] == [("discovered_at",)]


def test_every_time_out_of_order_is_named_at_its_field():
    report = make_report(
        last_seen_at=NOW.isoformat(),
        discovered_at=(NOW - timedelta(hours=2)).isoformat(),
        agency_learned_at=(NOW - timedelta(hours=3)).isoformat(),
        determined_missing_at=(NOW - timedelta(hours=1)).isoformat(),
    )
    with pytest.raises(ValidationError) as caught:
        EpisodeReportedData.model_validate(report)
    assert {e["loc"]: e["type"] for e in caught.value.errors()} == {
        ("discovered_at",): "time_order",
        ("agency_learned_at",): "time_order",
        ("determined_missing_at",): "time_order",
    }


def test_report_times_need_a_time_zone():
    with pytest.raises(ValidationError, match="timezone"):
        EpisodeReportedData.model_validate(
            make_report(agency_learned_at="2026-11-01T12:00:00")
        )


def test_endangerments_accept_true_false_and_unknown_only():
    report = EpisodeReportedData.model_validate(
        make_report(endangerments={"pregnant": "unknown", "suicidal_tendencies": True})
    )
    assert report.endangerments.pregnant == "unknown"
    assert report.endangerments.suicidal_tendencies is True
    with pytest.raises(ValidationError, match=r"endangerments\.pregnant"):
        EpisodeReportedData.model_validate(
            make_report(endangerments={"pregnant": "maybe"})
        )


def test_inbound_parsing_refuses_fields_it_does_not_know():
    """It used to drop them without a word (issue 24: a misspelled field the agency
    believed it had sent); a county's own data goes in ``extensions``."""
    with pytest.raises(ValidationError, match="new_field_from_2027"):
        EpisodeReportedData.model_validate(make_report(new_field_from_2027="x"))
    report = EpisodeReportedData.model_validate(
        make_report(extensions={"new_field_from_2027": "x"})
    )
    assert report.extensions == {"new_field_from_2027": "x"}


def test_text_fields_are_bounded():
    with pytest.raises(ValidationError, match=r"child\.first_name"):
        EpisodeReportedData.model_validate(make_report(child={"first_name": "x" * 101}))


def test_every_inbound_episode_type_has_a_canonical_type():
    # A heartbeat is about the county's feed, not an episode: it has none.
    assert set(INBOUND_DATA) - {EventType.FEED_HEARTBEAT} == set(CANONICAL_DATA)
    for name, model in CANONICAL_DATA.items():
        assert issubclass(model, INBOUND_DATA[name])
        assert {"episode_id", "county_code"} <= set(model.model_fields)


def test_a_refusal_names_an_unreadable_key_escaped_and_short() -> None:
    """A sender's key may hold a NUL (which PostgreSQL refuses in JSON text, so the
    dead letter could not reach the trail) or run to any length."""
    data = {"\x00odd": 1, "k" * 500: 2}
    with pytest.raises(InvalidEventError) as refused:
        CloudEvent.new(
            type=EventType.EPISODE_CLOSED,
            source="county/NC-063",
            subject=None,
            data=data,
            time=datetime.now(UTC),
        ).data_as(INBOUND_DATA[EventType.EPISODE_CLOSED], strict=True)
    reason = str(refused.value)
    assert "\x00" not in reason
    assert "data.\\x00odd: unknown field" in reason
    assert "k" * 500 not in reason
    assert "data." + "k" * 61 + "...: unknown field" in reason


def test_an_event_with_a_nul_character_in_a_text_is_dead_letter_material():
    """PostgreSQL stores no NUL: the reason names where it is."""
    raw = json.dumps(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "county/NC-063",
            "type": "mfc.episode.updated",
            "time": "2026-12-02T09:00:00Z",
            "subject": "ep-1",
            "data": {"note": "a\u0000b"},
        }
    ).encode()
    with pytest.raises(
        InvalidEventError, match=r"data\.note: holds a NUL character"
    ) as refused:
        CloudEvent.from_bytes(raw)
    # Known apart from its data: its dead letter names the event and episode.
    assert refused.value.event is not None
    assert (refused.value.event.id, refused.value.event.subject) == ("e-1", "ep-1")
