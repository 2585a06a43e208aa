from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from shared.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("10s", timedelta(seconds=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta()),
        (" 1d 2h ", timedelta(days=1, hours=2)),
    ],
)
def test_parse_duration_reads_plain_strings(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "24 hours", "1x", "-5m", "5m3"])
def test_parse_duration_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["24h", "1d2h", "30m", "1h30m15s", "250ms", "0s"])
def test_format_duration_round_trips(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_duration_type_accepts_strings_and_seconds_and_dumps_strings():
    class Model(BaseModel):
        wait: Duration

    assert Model(wait="2h").wait == timedelta(hours=2)
    assert Model.model_validate({"wait": 90}).wait == timedelta(seconds=90)
    assert Model(wait="1d").model_dump(mode="json") == {"wait": "1d"}
    with pytest.raises(ValidationError, match="invalid duration"):
        Model(wait="soon")
