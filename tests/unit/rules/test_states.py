"""The shipped policy's deadlines for the nine jurisdictions added in policy 2026-12,
computed by hand for one concrete episode each (times in UTC unless written).

The episode: the child was last seen Friday 16 Jan 2026 at 19:00 UTC, the placement
discovered the absence at 20:00, the agency learned of it at 21:00 and determined the
child missing at 22:00; Monday 19 Jan is Martin Luther King Jr. Day.
"""

from datetime import UTC, datetime, timedelta

import pytest

from rules import EpisodeFacts, obligations_to_open
from shared.events import Circumstance
from shared.policy import ClockStart, Policy, Trigger, default_policy_path, load_policy

LAST_SEEN = datetime(2026, 1, 16, 19, tzinfo=UTC)
DISCOVERED = datetime(2026, 1, 16, 20, tzinfo=UTC)
LEARNED = datetime(2026, 1, 16, 21, tzinfo=UTC)
DETERMINED = datetime(2026, 1, 16, 22, tzinfo=UTC)
TIMES = {
    ClockStart.LAST_SEEN_AT: LAST_SEEN,
    ClockStart.DISCOVERED_AT: DISCOVERED,
    ClockStart.AGENCY_LEARNED_AT: LEARNED,
    ClockStart.DETERMINED_MISSING_AT: DETERMINED,
}
RUNAWAY = EpisodeFacts(
    age_years=15, endangered=False, circumstance=Circumstance.RUNAWAY, indian_child=True
)
ABDUCTED = RUNAWAY.model_copy(update={"circumstance": Circumstance.FAMILY_ABDUCTION})
DAY = timedelta(hours=24)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_path())


def deadlines(policy: Policy, county: str, facts: EpisodeFacts = RUNAWAY) -> dict:
    drafts = obligations_to_open(
        policy.obligations_for(county),
        Trigger.REPORTED,
        facts,
        TIMES,
        calendars=policy.document.calendars,
    )
    return {draft.rule.id: draft.due_at for draft in drafts}


FEDERAL = {"law_enforcement_report": LEARNED + DAY, "ncmec_report": LEARNED + DAY}


def test_new_york_restates_the_federal_24_hours_under_its_own_rule(policy):
    assert deadlines(policy, "NY-061") == FEDERAL
    rules = {rule.id: rule for rule in policy.obligations_for("NY-061")}
    assert rules["law_enforcement_report"].source.startswith("18 NYCRR 431.8")


def test_illinois_adds_parents_and_the_juvenile_court_within_24_hours(policy):
    assert deadlines(policy, "IL-031") == FEDERAL | {
        "parent_notice_missing": LEARNED + DAY,
        "court_notice_missing": LEARNED + DAY,
    }


def test_washington_keeps_24_hours_from_notification(policy):
    assert deadlines(policy, "WA-053") == FEDERAL


def test_georgia_court_report_counts_two_business_days_past_the_holiday(policy):
    # Determined missing Fri 16 Jan 17:00 EST; Sat, Sun and MLK Day do not count;
    # Tue 20 and Wed 21 do: due Wed 21 Jan 17:00 EST (22:00 UTC).
    assert deadlines(policy, "GA-121") == FEDERAL | {
        "missing_children_team_notice": DETERMINED + DAY,
        "court_runaway_report": datetime(2026, 1, 21, 22, tzinfo=UTC),
    }


def test_utah_staffs_the_case_with_the_child_and_family_team_within_2_hours(policy):
    assert deadlines(policy, "UT-035") == FEDERAL | {
        "child_and_family_team_staffing": LEARNED + timedelta(hours=2)
    }


def test_arizona_notifies_everyone_around_a_runaway_within_24_hours(policy):
    notices = [
        "parent_notice_missing",
        "attorney_notice_missing",
        "gal_notice_missing",
        "caregiver_notice_missing",
        "casa_notice_missing",
        "court_notice_missing",
        "tribe_notice_missing",
    ]
    assert deadlines(policy, "AZ-013") == FEDERAL | dict.fromkeys(
        notices, LEARNED + DAY
    )
    # An abducted child: parents, attorney, GAL and caregiver only (section 9).
    assert set(deadlines(policy, "AZ-013", ABDUCTED)) == set(FEDERAL) | set(notices[:4])


def test_the_district_wants_a_police_report_within_an_hour_of_discovery(policy):
    assert deadlines(policy, "DC-001") == FEDERAL | {
        "law_enforcement_report": DISCOVERED + timedelta(hours=1)
    }


def test_nevada_keeps_24_hours_for_ncmec_under_its_own_policy(policy):
    assert deadlines(policy, "NV-031") == FEDERAL
    rules = {rule.id: rule for rule in policy.obligations_for("NV-031")}
    assert rules["ncmec_report"].source.startswith("NV Statewide Child Welfare Policy")


def test_tennessee_petitions_the_court_in_24_hours_and_follows_up_in_3_business_days(
    policy,
):
    # Learned Fri 16 Jan 15:00 CST; MLK Day does not count: Tue 20, Wed 21, Thu 22;
    # due Thu 22 Jan 17:00 CST (23:00 UTC).
    assert deadlines(policy, "TN-037") == FEDERAL | {
        "court_petition_runaway": DISCOVERED + DAY,
        "absconder_unit_followup": datetime(2026, 1, 22, 23, tzinfo=UTC),
    }
    assert deadlines(policy, "TN-037", ABDUCTED) == FEDERAL  # the runaway protocol
