"""The cross-check (issue 22, part 2): the duties the episode events and the policy
of record ask for, derived with the rules package alone, beside what the notifier
opened. On ordinary traffic the two agree; a notifier that misses a duty, opens it
with another deadline or closes it without a matching notice is named."""

import json
from datetime import timedelta
from uuid import uuid4

from audit.domain import compliance, crosscheck
from audit.domain.compliance import report_of_events
from devtools.whatif import EpisodeTrail, replay
from shared.adoption import adopted
from shared.clock import ManualClock
from shared.events import CloudEvent
from shared.policy import Policy, default_policy_path, parse_policy
from tests.unit.notifier.builders import (
    START,
    H,
    closed,
    located,
    notified,
    reported,
    screened,
    updated,
)

SHIPPED = default_policy_path().read_bytes()
POLICY = parse_policy(SHIPPED, origin="default.toml")
WITHOUT_NCMEC = parse_policy(
    SHIPPED.replace(
        b'[[jurisdictions.federal.obligations]]\nid = "ncmec_report"\n',
        b'[[jurisdictions.federal.obligations]]\nid = "ncmec_report"\ndisabled = true\n',
    ),
    origin="notifier-only.toml",
)
NY_12H = parse_policy(
    SHIPPED.replace(
        b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\n',
        b'[[jurisdictions.NY.obligations]]\nid = "law_enforcement_report"\ndue = "12h"\n',
    ),
    origin="ny-12h.toml",
)
LATER = START + 30 * 24 * H


def document(event: CloudEvent) -> dict:
    return json.loads(event.model_dump_json(exclude_none=True))


def episode(county: str, *later, **report) -> list[CloudEvent]:
    ids = (uuid4(), county)
    first = reported(ids, policy_digest=POLICY.digest, **report)
    return [first, *(make(ids) for make in later)]


def told(recipient: str, hours: float, **data):
    return lambda ids: notified(ids, START + hours * H, recipient, **data)


def back(hours: float):
    return lambda ids: located(ids, START + hours * H)


def screening(hours: float, *, trafficking: bool):
    return lambda ids: screened(ids, START + hours * H, trafficking=trafficking)


def update(hours: float, **data):
    return lambda ids: updated(ids, START + hours * H, **data)


def shut(hours: float):
    return lambda ids: closed(ids, START + hours * H)


async def notifier_view(episodes: list[list[CloudEvent]], policy: Policy):
    """What the notifier's own handlers open and close for these events."""
    records = []
    for events in episodes:
        trail = EpisodeTrail(str(events[0].subject), "", START)
        trail.events.extend(events)
        records += await replay(trail, policy)
    return records


def derived(episodes: list[list[CloudEvent]]) -> crosscheck.Derivation:
    events = [document(e) for events in episodes for e in events]
    return crosscheck.derive(events, {POLICY.digest: POLICY})


TRAFFIC = [
    # North Carolina, federal duties only: both told in time, back, screened, closed.
    episode(
        "NC-063",
        told("law_enforcement", 2, reference_number="LE-1"),
        told("ncmec", 5, reference_number="NCMEC-1"),
        back(40),
        screening(41, trafficking=True),
        told("law_enforcement", 50, reference_number="LE-2"),
        shut(80),
    ),
    # New York: law enforcement told late; NCMEC never; still missing.
    episode("NY-061", told("law_enforcement", 30, reference_number="LE-3")),
    # Florida: an endangerment learned later opens the immediate report then.
    episode(
        "FL-086",
        update(3, endangerments={"suicidal_tendencies": True}),
        told("law_enforcement", 3.5, reference_number="LE-4"),
        shut(10),
        child={"date_of_birth": "2008-01-01"},
    ),
    # California, an Indian child: the tribe is owed a notice; closed early.
    episode("CA-037", shut(2), child={"indian_child": True}),
]


async def test_the_derived_view_agrees_with_the_notifier_on_ordinary_traffic():
    mine = await notifier_view(TRAFFIC, POLICY)
    found = crosscheck.pairs(mine, derived(TRAFFIC), now=LATER)
    kinds = {(p.either.county_code, p.either.kind) for p in found}
    # The replay covered every kind of trigger: report, update, located, screening.
    assert ("FL-086", "law_enforcement_report_immediate") in kinds
    assert ("CA-037", "tribe_notice_missing") in kinds
    assert ("NC-063", "trafficking_victim_le_report") in kinds
    assert ("NC-063", "recovery_notice_le") in kinds
    assert [p for p in found if p.finding is not None] == []
    for pair in found:
        assert pair.notifier is not None
        assert pair.derived is not None
        assert pair.notifier.outcome(LATER) == pair.derived.outcome(LATER)
        assert pair.notifier.satisfied_at == pair.derived.satisfied_at
    outcomes = {p.derived.outcome(LATER) for p in found if p.derived}
    assert {"met", "late", "missing", "moot"} <= outcomes


async def test_a_duty_the_notifier_never_opened_is_a_finding():
    """The notifier ran with NCMEC's rule disabled in its own policy only."""
    mine = await notifier_view(TRAFFIC, WITHOUT_NCMEC)
    found = crosscheck.pairs(mine, derived(TRAFFIC), now=LATER)
    never = [p for p in found if p.finding == crosscheck.NEVER_OPENED]
    assert {p.either.kind for p in never} == {"ncmec_report"}
    assert len(never) == len(TRAFFIC)
    ny = next(p for p in never if p.either.county_code == "NY-061")
    assert ny.notifier is None
    assert ny.derived is not None
    assert ny.derived.outcome(LATER) == "missing"
    assert ny.derived.due_at == START + 24 * H


async def test_a_duty_opened_with_another_deadline_is_a_finding():
    mine = await notifier_view(TRAFFIC, NY_12H)
    found = crosscheck.pairs(mine, derived(TRAFFIC), now=LATER)
    other = [p for p in found if p.finding is not None]
    assert [(p.finding, p.either.county_code, p.either.kind) for p in other] == [
        (crosscheck.OTHER_DUE, "NY-061", "law_enforcement_report")
    ]
    assert other[0].notifier is not None
    assert other[0].derived is not None
    assert other[0].derived.due_at - other[0].notifier.due_at == timedelta(hours=12)


async def test_a_duty_closed_without_a_matching_notice_is_a_finding():
    """The notifier says NCMEC was told; the trail holds only a notice to law
    enforcement, which does not answer NCMEC's duty."""
    events = episode("NC-063", told("law_enforcement", 2, reference_number="LE-1"))
    mine = await notifier_view([events], POLICY)
    ncmec = next(r for r in mine if r.kind == "ncmec_report")
    ncmec.satisfied_at, ncmec.notice_event_id = START + 3 * H, str(events[1].id)
    found = crosscheck.pairs(mine, derived([events]), now=LATER)
    findings = {p.either.kind: p.finding for p in found}
    assert findings.pop("ncmec_report") == crosscheck.NO_MATCHING_NOTICE
    assert findings["law_enforcement_report"] is None
    assert set(findings.values()) == {None}


async def test_a_notice_the_notifier_did_not_count_is_a_finding():
    """The trail holds a matching notice to law enforcement; the notifier's view
    still has the duty open (its satisfaction lost)."""
    events = episode("NC-063", told("law_enforcement", 2, reference_number="LE-1"))
    mine = await notifier_view([events], POLICY)
    lost = next(r for r in mine if r.kind == "law_enforcement_report")
    lost.satisfied_at = lost.notice_event_id = None
    found = {
        p.either.kind: p for p in crosscheck.pairs(mine, derived([events]), now=LATER)
    }
    assert found["law_enforcement_report"].finding == crosscheck.NOT_COUNTED


async def test_an_obligation_no_rule_asks_for_is_a_finding():
    events = episode("NC-063")
    mine = await notifier_view([events], POLICY)
    mine[0].kind = "invented_duty"
    found = crosscheck.pairs(mine, derived([events]), now=LATER)
    assert (crosscheck.NOT_ASKED, "invented_duty") in {
        (p.finding, p.either.kind) for p in found
    }


async def test_episodes_that_cannot_be_derived_say_why():
    unstamped = (uuid4(), "NC-063")
    unknown = (uuid4(), "NC-063")
    redacted = document(reported((uuid4(), "NC-063"), policy_digest=POLICY.digest))
    redacted["data"]["child"]["date_of_birth"] = "[redacted]"
    events = [
        document(reported(unstamped)),
        document(reported(unknown, policy_digest="0" * 64)),
        redacted,
        document(closed(unknown, START + H)),
    ]
    result = crosscheck.derive(events, {POLICY.digest: POLICY})
    assert result.duties == []
    reasons = {u.episode_id: u.reason for u in result.unchecked}
    assert "names no policy of record" in reasons[str(unstamped[0])]
    assert "0" * 64 in reasons[str(unknown[0])]
    assert "redacted" in reasons[redacted["data"]["episode_id"]]


async def test_the_report_carries_both_views_from_the_trail_alone():
    """``report_of_events`` reads the policy from its ``mfc.policy.adopted`` event:
    the same input online and offline gives the same cross-check CSV."""
    events = episode("NY-061", told("law_enforcement", 30, reference_number="LE-3"))
    mine = await notifier_view([events], WITHOUT_NCMEC)
    opened = [
        {
            "type": "mfc.obligation.opened",
            "time": START.isoformat(),
            "data": {
                "obligation_id": r.obligation_id,
                "episode_id": r.episode_id,
                "county_code": r.county_code,
                "kind": r.kind,
                "jurisdiction": r.jurisdiction,
                "clock_start": r.clock_start.isoformat(),
                "due_at": r.due_at.isoformat(),
                "policy_digest": r.policy_digest,
            },
        }
        for r in mine
    ]
    satisfied = [
        {
            "type": "mfc.obligation.satisfied",
            "time": r.satisfied_at.isoformat(),
            "data": {
                "obligation_id": r.obligation_id,
                "satisfied_at": r.satisfied_at.isoformat(),
                "notification_event_id": r.notice_event_id,
            },
        }
        for r in mine
        if r.satisfied_at is not None
    ]
    assert satisfied, "law enforcement was told"
    policy = document(adopted(POLICY, source="test", clock=ManualClock(START)))
    trail = [policy, *[document(e) for e in events], *opened, *satisfied]
    result = report_of_events(trail, now=LATER)
    cross = result["crosscheck"]
    assert cross["findings"][crosscheck.NEVER_OPENED] == 1
    assert cross["agree"] == len(mine)
    text = compliance.csv_text(result, "crosscheck")
    header, *rows = text.splitlines()
    assert header.split(",") == list(compliance.CROSSCHECK_COLUMNS)
    ncmec = next(r for r in rows if ",ncmec_report," in r)
    assert ncmec.endswith(",missing,duty never opened,")
    assert text == compliance.csv_text(
        report_of_events(list(trail), now=LATER), "crosscheck"
    )
    # Without the policy in the trail, nothing is derived, and the report says why.
    bare = report_of_events(trail[1:], now=LATER)["crosscheck"]
    assert bare["unchecked_episodes"][0]["reason"].startswith("the policy of record")


async def test_a_notice_without_a_required_item_is_notified_incomplete_in_both_views():
    """Issue 22, part 3: NCMEC was told in time, but the report had no photo,
    which the federal rule requires with it; nothing complete followed."""
    events = episode(
        "NY-061",
        told("law_enforcement", 2, reference_number="LE-1"),
        told("ncmec", 3, reference_number="N-1", missing_items=["child.photo_url"]),
        child={"photo_url": None},
    )
    mine = await notifier_view([events], POLICY)
    found = {
        p.either.kind: p for p in crosscheck.pairs(mine, derived([events]), now=LATER)
    }
    ncmec = found["ncmec_report"]
    assert ncmec.finding is None
    assert ncmec.notifier is not None
    assert ncmec.derived is not None
    assert ncmec.notifier.outcome(LATER) == ncmec.derived.outcome(LATER) == "incomplete"
    assert ncmec.notifier.outcome(START + 4 * H) == "pending"  # could still be given
    assert "without a photo" in str(ncmec.notifier.waiting_reason)
    summary = compliance.report(mine, now=LATER)["total"]
    assert summary["incomplete"] == 1
    assert summary["on_time_share"] is not None
    assert summary["on_time_share"] < 1


async def test_a_later_complete_notice_satisfies_the_duty_from_its_own_time():
    """The photo supplied later does not satisfy the duty by itself; the notice
    recorded again once the report is complete does, late here (after 24 h)."""
    events = episode(
        "NY-061",
        told("ncmec", 3, reference_number="N-1", missing_items=["child.photo_url"]),
        update(20, child={"photo_url": "https://photos.example.org/p/9.jpg"}),
        told("ncmec", 30, reference_number="N-1"),
        child={"photo_url": None},
    )
    mine = await notifier_view([events], POLICY)
    found = {
        p.either.kind: p for p in crosscheck.pairs(mine, derived([events]), now=LATER)
    }
    ncmec = found["ncmec_report"]
    assert ncmec.finding is None
    assert ncmec.notifier is not None
    assert ncmec.notifier.satisfied_at == START + 30 * H
    assert ncmec.notifier.outcome(LATER) == "late"
