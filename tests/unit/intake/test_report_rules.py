from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.counties import is_us_county
from intake.domain.model import (
    ReportRejectedError,
    check_report,
    completeness,
    report_digest,
)
from shared.events import EpisodeReportedData
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
