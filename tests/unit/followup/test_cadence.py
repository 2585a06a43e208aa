"""Every cadence of the shipped prompts, with a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest

from followup.domain.prompts import (
    ENDS,
    STARTS,
    occurrence_at,
    occurrences_between,
    rules_starting,
)
from shared.events import EventType
from shared.policy import PromptStart, default_policy_path, load_policy

POLICY = load_policy(default_policy_path())
START = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def rule(county: str, rule_id: str):
    [found] = [r for r in POLICY.prompts_for(county) if r.id == rule_id]
    return found


@pytest.mark.parametrize(
    ("county", "rule_id", "days", "expected"),
    [
        ("WA-033", "document_search_efforts", 7, 7),  # every 24 h while missing
        ("WA-033", "supervisor_review", 28, 4),  # every 7 days
        ("WA-033", "contact_le_ncmec", 28, 4),  # every 7 days
        ("WA-033", "provide_missing_report_items", 3, 4),  # at once, then every 24 h
        ("MO-510", "contact_le_ncmec", 90, 3),  # Missouri: monthly contacts
        (
            "FL-086",
            "document_search_efforts",
            60,
            4,
        ),  # Florida: weekly for 30 days only
    ],
)
def test_recurring_prompts_occur_at_their_jurisdictions_cadence(
    county, rule_id, days, expected
):
    assert (
        occurrences_between(
            rule(county, rule_id),
            START,
            START,
            START + days * DAY + timedelta(seconds=1),
        )
        == expected
    )


def test_the_first_search_prompt_comes_a_day_after_the_report():
    search = rule("WA-033", "document_search_efforts")
    assert occurrence_at(search, START, 0) == START + DAY
    assert occurrence_at(search, START, 1) == START + 2 * DAY


def test_florida_stops_the_weekly_search_prompt_after_30_days():
    search = rule("FL-086", "document_search_efforts")
    assert occurrence_at(search, START, 3) == START + 28 * DAY
    assert occurrence_at(search, START, 4) is None


@pytest.mark.parametrize(
    "rule_id", ["share_new_information", "trafficking_screening", "return_debrief"]
)
def test_one_off_prompts_occur_once(rule_id):
    one_off = rule("WA-033", rule_id)
    assert occurrence_at(one_off, START, 0) == START
    assert occurrence_at(one_off, START, 1) is None


def test_post_return_prompts_are_due_within_72_hours():
    for rule_id in ("trafficking_screening", "return_debrief"):
        assert rule("WA-033", rule_id).due == 72 * timedelta(hours=1)
    assert (
        rule("WA-033", "trafficking_screening").completed_by_event
        == "mfc.screening.completed"
    )


def test_events_start_and_end_the_right_series():
    rules = POLICY.prompts_for("WA-033")
    assert {r.id for r in rules_starting(rules, PromptStart.LOCATED)} == {
        "trafficking_screening",
        "return_debrief",
    }
    assert STARTS[EventType.EPISODE_UPDATED] == (PromptStart.NEW_INFORMATION,)
    assert set(ENDS[EventType.EPISODE_LOCATED]) == {
        PromptStart.REPORTED,
        PromptStart.INCOMPLETE,
    }
    assert set(ENDS[EventType.EPISODE_CLOSED]) == set(PromptStart)
