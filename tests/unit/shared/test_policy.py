from datetime import timedelta

import pytest

from shared.policy import (
    BusinessDays,
    PolicyError,
    Trigger,
    default_policy_path,
    load_policy,
    parse_policy,
    rule_snapshot,
)

MINIMAL = b"""
version = "t"
[chains.default]
levels = [{ name = "caseworker", notify = ["caseworker"] }]
[jurisdictions.federal]
[[jurisdictions.federal.obligations]]
id = "law_enforcement_report"
title = "LE"
opens_on = "reported"
clock = "agency_learned_at"
due = "24h"
satisfied_by = { recipient = "law_enforcement" }
source = "42 U.S.C. 671(a)(35)(B)"
"""


CALENDAR = b"""
[calendars.GA]
holidays = "US-GA"
time_zone = "America/New_York"
[jurisdictions.federal]
"""


def test_a_business_day_rule_counts_in_its_jurisdictions_calendar():
    policy = parse_policy(
        MINIMAL.replace(b"[jurisdictions.federal]", CALENDAR)
        + b"""
[jurisdictions.GA]
calendar = "GA"
[[jurisdictions.GA.obligations]]
id = "runaway_court_report"
title = "Runaway report to the juvenile court"
opens_on = "reported"
clock = "agency_learned_at"
due = "2 business days"
satisfied_by = { recipient = "court" }
source = "GA DFCS policy 19.22"
"""
    )
    [court] = [
        r for r in policy.obligations_for("GA-121") if r.id == "runaway_court_report"
    ]
    assert (court.due, court.calendar) == (BusinessDays(2), "GA")
    assert rule_snapshot(court)["due"] == "2 business days"


def test_a_rule_may_name_only_a_calendar_the_file_defines():
    with pytest.raises(PolicyError, match="calendar: unknown calendar 'nope'"):
        parse_policy(MINIMAL.replace(b'due = "24h"', b'due = "24h"\ncalendar = "nope"'))


def test_a_disabled_business_day_rule_needs_no_calendar():
    policy = parse_policy(
        MINIMAL.replace(b'due = "24h"', b'due = "2 business days"\ndisabled = true')
    )
    assert policy.obligations_for("NY-061") == []


def test_the_shipped_policy_is_valid_and_cites_a_source_for_every_rule():
    policy = load_policy(default_policy_path())
    for county in (
        "NC-063",
        "CA-037",
        "TX-201",
        "MO-510",
        "FL-086",
        "KY-111",
        "WA-033",
    ):
        rules = policy.obligations_for(county)
        assert {"law_enforcement_report", "ncmec_report"} <= {r.id for r in rules}
        assert all(len(r.source) > 10 for r in rules)


def test_overlays_merge_by_id_state_then_county():
    policy = parse_policy(
        MINIMAL
        + b"""
[jurisdictions.MO]
[[jurisdictions.MO.obligations]]
id = "law_enforcement_report"
due = "2h"
source = "RSMo 210.795"
[jurisdictions."MO-510"]
[[jurisdictions."MO-510".obligations]]
id = "law_enforcement_report"
due = "1h"
source = "a county rule"
[[jurisdictions."MO-510".obligations]]
id = "county_extra"
disabled = true
title = "x"
opens_on = "reported"
clock = "agency_learned_at"
due = "1h"
satisfied_by = { recipient = "court" }
source = "disabled county rule"
"""
    )
    assert [(r.id, r.due) for r in policy.obligations_for("WA-033")] == [
        ("law_enforcement_report", timedelta(hours=24))
    ]
    assert policy.obligations_for("MO-001")[0].due == timedelta(hours=2)
    assert policy.obligations_for("MO-510")[0].due == timedelta(hours=1)
    assert [r.id for r in policy.obligations_for("MO-510")] == [
        "law_enforcement_report"
    ]
    assert policy.jurisdiction_of("MO-510") == "MO-510"
    assert policy.jurisdiction_of("MO-001") == "MO"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (b'due = "24h"', b'due = "soon"'),
            r"jurisdictions\.federal, rule law_enforcement_report: due: .*invalid duration",
        ),
        (
            (b'recipient = "law_enforcement"', b'recipient = "police"'),
            r"satisfied_by.recipient",
        ),
        (
            (b'opens_on = "reported"', b'opens_on = "reported"\nopens_at = "x"'),
            r"opens_at: Extra inputs",
        ),
        (
            (b'notify = ["caseworker"]', b'notify = ["schedule:nobody"]'),
            r"unknown schedule 'nobody'",
        ),
        ((b'version = "t"', b'version = "t"\n[[['), r"not valid TOML"),
        (
            (
                b"[jurisdictions.federal]",
                b"[jurisdictions.XY]\n[jurisdictions.federal]",
            ),
            r"jurisdictions\.XY\.\[key\]: Value error, unknown state code 'XY'",
        ),
        (
            (b'due = "24h"', b'due = "2 business days"'),
            r"jurisdictions\.federal, rule law_enforcement_report: due: 2 business days "
            r"needs a calendar",
        ),
        (
            (b'due = "24h"', b'due = "2 business dayz"'),
            r"rule law_enforcement_report: due: .*write e\.g\. '2 business days'",
        ),
        (
            (b'due = "24h"', b'due = "2 business days"\ncalendar = "nowhere"'),
            r"rule law_enforcement_report: calendar: unknown calendar 'nowhere'",
        ),
        (
            (b"[jurisdictions.federal]", CALENDAR.replace(b"US-GA", b"US-XX")),
            r"calendars\.GA\.holidays: .*no subdivision 'XX' of US",
        ),
        (
            (
                b"[jurisdictions.federal]",
                CALENDAR.replace(b"America/New_York", b"Mars/Base"),
            ),
            r"calendars\.GA\.time_zone: .*unknown time zone 'Mars/Base'",
        ),
        (
            (
                b'source = "42',
                b'source = "42 U.S.C. 671"\n[[jurisdictions.federal.obligations]]\n'
                b'id = "law_enforcement_report"\nsource = "42',
            ),
            r"jurisdictions\.federal, rule law_enforcement_report: id: used twice",
        ),
    ],
)
def test_errors_name_the_file_the_rule_and_the_field(change, message):
    broken = MINIMAL.replace(*change)
    with pytest.raises(PolicyError, match=message) as caught:
        parse_policy(broken, origin="policy.toml")
    assert str(caught.value).startswith("policy.toml: ")


def test_the_policy_digest_changes_with_the_file():
    assert (
        parse_policy(MINIMAL).digest != parse_policy(MINIMAL + b"\n# edited\n").digest
    )


def test_triggers_are_the_three_episode_moments():
    assert {t.value for t in Trigger} == {"reported", "located", "screening"}
