"""Every rule of every shipped jurisdiction, with a fixed clock."""

from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain.obligations import initials
from rules import (
    EpisodeFacts,
    check_notification,
    endangerment_flags,
    is_endangered,
    obligations_to_open,
)
from shared.events import (
    EndangermentsUpdate,
    EpisodeReportedData,
    NotificationRecordedData,
)
from shared.policy import (
    ClockStart,
    SatisfiedBy,
    Trigger,
    default_policy_path,
    load_policy,
)
from tests.conftest import make_report

POLICY = load_policy(default_policy_path())
LAST_SEEN = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
DISCOVERED = LAST_SEEN + timedelta(hours=2)
LEARNED = LAST_SEEN + timedelta(hours=3)
LOCATED = LAST_SEEN + timedelta(days=3)
SCREENED = LOCATED + timedelta(hours=20)
TIMES = {
    ClockStart.LAST_SEEN_AT: LAST_SEEN,
    ClockStart.DISCOVERED_AT: DISCOVERED,
    ClockStart.AGENCY_LEARNED_AT: LEARNED,
    ClockStart.DETERMINED_MISSING_AT: None,
    ClockStart.LOCATED_AT: LOCATED,
    ClockStart.SCREENING_COMPLETED_AT: SCREENED,
}
H = timedelta(hours=1)


def facts(
    *, born="2010-01-01", endangered=False, trafficking=None, indian_child="unknown"
) -> EpisodeFacts:
    report = make_report(child={"date_of_birth": born, "indian_child": indian_child})
    report["endangerments"]["suicidal_tendencies"] = endangered
    return EpisodeFacts.of(
        EpisodeReportedData.model_validate(
            {
                **report,
                "last_seen_at": LAST_SEEN.isoformat(),
                "discovered_at": DISCOVERED.isoformat(),
                "agency_learned_at": LEARNED.isoformat(),
            }
        ),
        trafficking_indicated=trafficking,
    )


def due(county: str, trigger: Trigger, episode: EpisodeFacts) -> dict[str, datetime]:
    drafts = obligations_to_open(
        POLICY.obligations_for(county), trigger, episode, TIMES
    )
    return {d.rule.id: d.due_at for d in drafts}


FEDERAL_REPORTED = {
    "law_enforcement_report": LEARNED + 24 * H,
    "ncmec_report": LEARNED + 24 * H,
}
RECOVERY = {
    "recovery_notice_le": LOCATED + 24 * H,
    "recovery_notice_ncmec": LOCATED + 24 * H,
}

EXPECTED_REPORTED = {
    "WA-033": FEDERAL_REPORTED,
    "MO-510": {
        "law_enforcement_report": DISCOVERED + 2 * H,
        "ncmec_report": DISCOVERED + 2 * H,
    },
    "KY-111": {
        "law_enforcement_report": LEARNED + 12 * H,
        "ncmec_report": LEARNED + 24 * H,
    },
    "NC-063": {
        "law_enforcement_report": LEARNED + 2 * H,
        "law_enforcement_written_report": LEARNED + 48 * H,
        "ncmec_report": LEARNED + 24 * H,
    },
    "TX-201": {
        **FEDERAL_REPORTED,
        "court_notice_missing": LEARNED + 24 * H,
        "attorney_notice_missing": LEARNED + 24 * H,
        "gal_notice_missing": LEARNED + 24 * H,
        "parent_notice_missing": LEARNED + 24 * H,
    },
    "CA-037": {
        **FEDERAL_REPORTED,
        "parent_notice_missing": LEARNED + 24 * H,
        "attorney_notice_missing": LEARNED + 24 * H,
    },
    "FL-086": {
        "law_enforcement_report": DISCOVERED + 4 * H,
        "ncmec_report": LEARNED + 24 * H,
    },
}


@pytest.mark.parametrize("county", sorted(EXPECTED_REPORTED))
def test_a_report_opens_the_jurisdictions_obligations_with_their_deadlines(county):
    assert due(county, Trigger.REPORTED, facts()) == EXPECTED_REPORTED[county]


@pytest.mark.parametrize(
    ("born", "endangered", "immediate"),
    [
        ("2010-01-01", False, False),
        ("2015-01-01", False, True),
        ("2010-01-01", True, True),
    ],
)
def test_florida_asks_for_an_immediate_report_under_13_or_endangered(
    born, endangered, immediate
):
    opened = due("FL-086", Trigger.REPORTED, facts(born=born, endangered=endangered))
    assert ("law_enforcement_report_immediate" in opened) is immediate
    if immediate:
        assert opened["law_enforcement_report_immediate"] == DISCOVERED + H


@pytest.mark.parametrize(
    ("indian_child", "tribe_notice"), [(True, True), (False, False), ("unknown", False)]
)
def test_california_tells_the_tribe_only_about_an_indian_child(
    indian_child, tribe_notice
):
    opened = due("CA-037", Trigger.REPORTED, facts(indian_child=indian_child))
    assert ("tribe_notice_missing" in opened) is tribe_notice


@pytest.mark.parametrize("county", sorted(EXPECTED_REPORTED))
def test_locating_the_child_opens_recovery_notices(county):
    expected = dict(RECOVERY)
    if county == "TX-201":
        expected |= {
            "court_notice_returned": LOCATED + 24 * H,
            "attorney_notice_returned": LOCATED + 24 * H,
            "gal_notice_returned": LOCATED + 24 * H,
            "parent_notice_returned": LOCATED + 24 * H,
        }
    assert due(county, Trigger.LOCATED, facts()) == expected


@pytest.mark.parametrize(
    ("county", "hours"), [("WA-033", 24), ("TX-201", 8), ("MO-510", 24)]
)
def test_an_identified_trafficking_victim_opens_a_law_enforcement_report(county, hours):
    assert due(county, Trigger.SCREENING, facts(trafficking=True)) == {
        "trafficking_victim_le_report": SCREENED + hours * H
    }
    assert due(county, Trigger.SCREENING, facts(trafficking=False)) == {}


def notice(**overrides) -> NotificationRecordedData:
    values = {
        "recipient": "ncmec",
        "method": "online",
        "notified_at": LEARNED + H,
        "reference_number": "NCMEC-1",
        "notified_by": "cw",
        **overrides,
    }
    return NotificationRecordedData.model_validate(values)


def test_a_matching_notification_satisfies():
    rule = SatisfiedBy(recipient="ncmec")
    assert check_notification(rule, notice(), not_before=LAST_SEEN).satisfied


def test_other_recipients_methods_and_earlier_notices_do_not_count():
    assert (
        check_notification(
            SatisfiedBy(recipient="law_enforcement"), notice(), not_before=None
        )
        is None
    )
    written_only = SatisfiedBy(recipient="ncmec", methods=["written"])
    assert check_notification(written_only, notice(), not_before=None) is None
    assert (
        check_notification(
            SatisfiedBy(recipient="ncmec"), notice(), not_before=LEARNED + 2 * H
        )
        is None
    )


def test_a_required_reference_number_keeps_the_obligation_open_with_a_reason():
    rule = SatisfiedBy(recipient="ncmec", requires_reference=True)
    outcome = check_notification(rule, notice(reference_number=None), not_before=None)
    assert outcome is not None
    assert not outcome.satisfied
    assert "reference_number" in outcome.waiting_reason


def test_alerts_name_the_child_by_initials_only():
    assert initials("jordan", "Testchild") == "J.T."


def test_a_rule_that_applies_only_after_an_update_starts_its_clock_then():
    learned_later = LEARNED + timedelta(hours=5)
    drafts = obligations_to_open(
        POLICY.obligations_for("FL-086"),
        Trigger.REPORTED,
        facts(endangered=True),
        TIMES,
        learned_at=learned_later,
    )
    by_id = {d.rule.id: d for d in drafts}
    immediate = by_id["law_enforcement_report_immediate"]
    assert immediate.clock_start == learned_later
    assert immediate.due_at == learned_later + H


def test_endangerment_flags_keep_presence_not_details():
    report = EpisodeReportedData.model_validate(make_report())
    assert endangerment_flags(report.endangerments) == {
        "pregnant": False,
        "prescription_medications": False,
        "suicidal_tendencies": False,
        "sex_trafficking_vulnerability": None,
        "other_health_or_risk_factors": False,
    }
    update = EndangermentsUpdate(prescription_medications=["insulin"], pregnant=None)
    assert endangerment_flags(update) == {"prescription_medications": True}
    assert is_endangered(
        {
            **endangerment_flags(report.endangerments),
            **{"prescription_medications": True},
        }
    )
    assert not is_endangered(endangerment_flags(report.endangerments))
