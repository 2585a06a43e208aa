"""The compliance report from obligation events: every outcome and the share."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from audit.domain.compliance import obligations_from, report

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def opened(episode, kind, county="NC-063", hours=24, start=START):
    obligation_id = str(uuid4())
    return obligation_id, {
        "type": "mfc.obligation.opened",
        "time": start.isoformat(),
        "data": {
            "obligation_id": obligation_id,
            "episode_id": episode,
            "county_code": county,
            "kind": kind,
            "jurisdiction": county[:2],
            "clock_start": start.isoformat(),
            "due_at": (start + timedelta(hours=hours)).isoformat(),
            "policy_digest": "sha256:abc",
        },
    }


def satisfied(obligation_id, at):
    return {
        "type": "mfc.obligation.satisfied",
        "time": at.isoformat(),
        "data": {
            "obligation_id": obligation_id,
            "satisfied_at": at.isoformat(),
            "notification_event_id": "n-1",
        },
    }


def moot(obligation_id, at, was_breached):
    return {
        "type": "mfc.obligation.moot",
        "time": at.isoformat(),
        "data": {"obligation_id": obligation_id, "was_breached": was_breached},
    }


def test_each_outcome_and_the_on_time_share():
    a, b = str(uuid4()), str(uuid4())
    met, e1 = opened(a, "law_enforcement_report")
    late, e2 = opened(a, "ncmec_report")
    missing, e3 = opened(b, "law_enforcement_report", county="MO-510", hours=2)
    pending, e4 = opened(b, "ncmec_report", county="MO-510", hours=200)
    mooted, e5 = opened(b, "recovery_notice_le", county="MO-510", hours=100)
    breached_then_closed, e6 = opened(
        b, "recovery_notice_ncmec", county="MO-510", hours=1
    )
    events = [
        e1,
        e2,
        e3,
        e4,
        e5,
        e6,
        satisfied(met, START + timedelta(hours=3)),
        satisfied(late, START + timedelta(hours=30)),
        moot(mooted, START + timedelta(hours=50), was_breached=False),
        moot(breached_then_closed, START + timedelta(hours=50), was_breached=True),
    ]
    now = START + timedelta(hours=60)
    result = report(obligations_from(events), now=now)
    outcomes = {
        o["obligation_id"]: o["outcome"]
        for e in result["episodes"]
        for o in e["obligations"]
    }
    assert outcomes == {
        met: "met",
        late: "late",
        missing: "missing",
        pending: "pending",
        mooted: "moot",
        breached_then_closed: "missing",
    }
    total = result["total"]
    assert (total["met"], total["late"], total["missing"]) == (1, 1, 2)
    assert total["on_time_share"] == 0.25
    row = next(
        o
        for e in result["episodes"]
        for o in e["obligations"]
        if o["obligation_id"] == met
    )
    assert row["seconds_to_notice"] == 3 * 3600
    assert row["allowed_seconds"] == 24 * 3600
    groups = {(g["kind"], g["county_code"]): g for g in result["by_kind_and_county"]}
    assert groups[("law_enforcement_report", "NC-063")]["on_time_share"] == 1.0
    assert groups[("law_enforcement_report", "MO-510")]["on_time_share"] == 0.0


def test_filters_select_by_county_and_clock_start():
    _early, e1 = opened(str(uuid4()), "ncmec_report", start=START)
    later, e2 = opened(str(uuid4()), "ncmec_report", start=START + timedelta(days=10))
    _other, e3 = opened(str(uuid4()), "ncmec_report", county="FL-086")
    records = obligations_from([e1, e2, e3])
    now = START + timedelta(days=20)
    chosen = report(
        records, now=now, counties=["NC-063"], clock_from=START + timedelta(days=1)
    )
    ids = [o["obligation_id"] for e in chosen["episodes"] for o in e["obligations"]]
    assert ids == [later]
    assert (
        report(records, now=now, clock_to=START + timedelta(days=1))["total"][
            "required"
        ]
        == 2
    )


def test_nothing_required_gives_no_share():
    assert report([], now=START)["total"]["on_time_share"] is None
