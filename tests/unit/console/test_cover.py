"""The on-call page's "someone else covers" form, read in the agency's time zone."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from console.domain.cover import cover_from_form
from console.domain.words import turn_words

EASTERN = ZoneInfo("America/New_York")
MEMBERS = ["oncall-a", "oncall-b"]


def test_a_cover_is_read_in_the_agencys_zone():
    cover, problems = cover_from_form(
        {
            "contact": "oncall-b",
            "start": "2026-12-02T18:00",
            "end": "2026-12-03T08:00",
            "reason": "  sick   day ",
        },
        EASTERN,
        MEMBERS,
    )
    assert problems == []
    assert cover["contact"] == "oncall-b"
    assert datetime.fromisoformat(cover["start"]) == datetime(
        2026, 12, 2, 23, tzinfo=UTC
    )
    assert datetime.fromisoformat(cover["end"]) == datetime(2026, 12, 3, 13, tzinfo=UTC)
    assert cover["reason"] == "sick day"


def test_what_is_missing_or_backwards_is_named_for_the_person_to_fix():
    _, problems = cover_from_form(
        {"contact": "someone", "start": "tomorrow", "end": "", "reason": " "},
        EASTERN,
        MEMBERS,
    )
    assert dict(problems) == {
        "contact": "Choose who covers.",
        "start": "Give the date and time the cover starts.",
        "end": "Give the date and time the cover ends.",
        "reason": "Say why (for example: sick day, swapped shifts).",
    }
    _, backwards = cover_from_form(
        {
            "contact": "oncall-a",
            "start": "2026-12-02T18:00",
            "end": "2026-12-02T17:00",
            "reason": "swap",
        },
        EASTERN,
        MEMBERS,
    )
    assert backwards == [("end", "The cover must end after it starts.")]


def test_a_rota_turn_reads_as_people_say_it():
    assert turn_words(7 * 86_400) == "1 week"
    assert turn_words(2 * 86_400) == "2 days"
    assert turn_words(12 * 3_600) == "12 hours"


def test_a_start_left_at_the_forms_default_minutes_ago_is_sent_as_now():
    now = datetime(2026, 12, 2, 23, 7, 30, tzinfo=UTC)
    fields = {
        "contact": "oncall-a",
        "start": "2026-12-02T18:01",  # 23:01 UTC, when the page loaded
        "end": "2026-12-03T08:00",
        "reason": "swap",
    }
    cover, problems = cover_from_form(fields, EASTERN, MEMBERS, now=now)
    assert problems == []
    assert datetime.fromisoformat(cover["start"]) == now
    # Hours ago is a mistake to show, not to mend.
    fields["start"] = "2026-12-02T10:00"
    cover, _ = cover_from_form(fields, EASTERN, MEMBERS, now=now)
    assert datetime.fromisoformat(cover["start"]) == datetime(
        2026, 12, 2, 15, tzinfo=UTC
    )
