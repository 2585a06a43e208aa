from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.counties import is_us_county
from intake.domain.model import (
    ReportRejectedError,
    check_report,
    completeness,
    missing_items,
    report_digest,
    rule_problems,
)
from shared.events import (
    EpisodeClosedData,
    EpisodeLocatedData,
    EpisodeReportedData,
    NotificationRecordedData,
    ScreeningCompletedData,
)
from tests.conftest import make_report

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SERVED = frozenset({"NC-063"})


def report(**overrides):
    base = make_report(
        last_seen_at=(NOW - timedelta(hours=5)).isoformat(),
        discovered_at=(NOW - timedelta(hours=4)).isoformat(),
        agency_learned_at=(NOW - timedelta(hours=3)).isoformat(),
    )
    base.update(overrides)
    return EpisodeReportedData.model_validate(base)


def test_a_complete_report_misses_nothing():
    assert completeness(report()) == ["endangerments.sex_trafficking_vulnerability"]


def test_completeness_names_each_missing_item():
    incomplete = report(
        child={**make_report()["child"], "photo_url": None, "eye_color": None},
        endangerments={"pregnant": "unknown"},
    )
    missing = completeness(incomplete)
    assert "child.photo_url" in missing
    assert "child.eye_color" in missing
    assert "endangerments.pregnant" in missing
    assert "child.hair_color" not in missing


def test_a_notice_lacks_the_law_enforcement_number_until_one_is_recorded():
    """What a notice went without (issue 22, part 3): the report's missing items,
    and the law-enforcement report number until a notice to law enforcement with a
    reference number has been recorded, this one included."""

    def notice(recipient: str, reference: str | None) -> NotificationRecordedData:
        return NotificationRecordedData(
            recipient=recipient,
            method="phone",
            notified_at=NOW,
            reference_number=reference,
            notified_by="cw-1",
        )

    missing = ["child.photo_url"]
    before = missing_items(
        missing, notice("ncmec", "N-1"), law_enforcement_reference_recorded=False
    )
    assert before == ["child.photo_url", "law_enforcement_report_number"]
    after = missing_items(
        missing, notice("ncmec", "N-1"), law_enforcement_reference_recorded=True
    )
    assert after == ["child.photo_url"]
    itself = missing_items(
        [], notice("law_enforcement", "DPD-1"), law_enforcement_reference_recorded=False
    )
    assert itself == []
    unnumbered = missing_items(
        [], notice("law_enforcement", None), law_enforcement_reference_recorded=False
    )
    assert unnumbered == ["law_enforcement_report_number"]


def test_future_agency_learned_at_is_refused_beyond_the_skew():
    in_future = (NOW + timedelta(minutes=10)).isoformat()
    with pytest.raises(ReportRejectedError) as caught:
        check_report(
            report(agency_learned_at=in_future),
            now=NOW,
            skew=timedelta(minutes=5),
            served_counties=SERVED,
        )
    assert [p.loc for p in caught.value.problems] == [("agency_learned_at",)]


def test_small_clock_skew_is_allowed():
    check_report(
        report(agency_learned_at=(NOW + timedelta(minutes=2)).isoformat()),
        now=NOW,
        skew=timedelta(minutes=5),
        served_counties=SERVED,
    )


def test_unserved_county_is_refused():
    with pytest.raises(ReportRejectedError, match="county_code"):
        check_report(
            report(county_code="MO-510"),
            now=NOW,
            skew=timedelta(),
            served_counties=SERVED,
        )


def test_same_report_has_same_digest_and_a_change_changes_it():
    assert report_digest(report(case_id="a")) == report_digest(report(case_id="a"))
    assert report_digest(report(case_id="a")) != report_digest(report(case_id="b"))


@pytest.mark.parametrize(
    ("code", "known"),
    [("NC-063", True), ("MO-510", True), ("NC-999", False), ("XX-001", False)],
)
def test_county_codes_are_checked_against_the_census_list(code, known):
    assert is_us_county(code) is known


def test_rules_judge_the_fields_that_parse_even_when_others_do_not():
    """One 422 lists schema and rule problems together: the rules look at a raw body
    the schema refused, field by field."""
    body = make_report(
        county_code="MO-510",
        last_seen_at=(NOW - timedelta(hours=2)).isoformat(),
        agency_learned_at=(NOW + timedelta(hours=1)).isoformat(),
        discovered_at="not a time",
        child={"sex": "robot", "date_of_birth": "2030-01-01"},
    )
    problems = rule_problems(
        EpisodeReportedData,
        body,
        now=NOW,
        skew=timedelta(minutes=5),
        served_counties=SERVED,
    )
    assert [p.loc for p in problems] == [
        ("county_code",),
        ("agency_learned_at",),
        ("child", "date_of_birth"),
    ]


def test_rules_skip_what_the_schema_already_refuses():
    body = {"county_code": "not a county", "child": "nobody", "last_seen_at": 7}
    assert (
        rule_problems(
            EpisodeReportedData,
            body,
            now=NOW,
            skew=timedelta(),
            served_counties=SERVED,
        )
        == []
    )
    assert (
        rule_problems(
            EpisodeReportedData,
            [1, 2],
            now=NOW,
            skew=timedelta(),
            served_counties=SERVED,
        )
        == []
    )


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (NotificationRecordedData, "notified_at"),
        (EpisodeLocatedData, "located_at"),
        (ScreeningCompletedData, "completed_at"),
        (EpisodeClosedData, "closed_at"),
    ],
)
def test_no_later_event_happens_in_the_future(model, field):
    def judged(at: datetime) -> list[tuple[str, ...]]:
        return [
            p.loc
            for p in rule_problems(
                model,
                {field: at.isoformat()},
                now=NOW,
                skew=timedelta(minutes=5),
                served_counties=SERVED,
            )
        ]

    assert judged(NOW + timedelta(minutes=6)) == [(field,)]
    assert judged(NOW + timedelta(minutes=4)) == []
