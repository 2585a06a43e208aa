"""A county feed fallen silent pages the county's on-call: the handler against the
in-memory port, and the policy's ``on_call`` resolution."""

from dataclasses import replace
from datetime import timedelta

import pytest

from notifier.handlers import apply_feed_event
from notifier.ports import FakeNotifier
from rules import on_call
from shared.clock import ManualClock
from shared.events import CloudEvent
from shared.policy import PolicyError, parse_policy
from shared.published import FeedEvent, FeedResumed, FeedSilent
from tests.unit.notifier.builders import POLICY, START, H, make_deps

SILENT_SINCE = START - 7 * H


def silent(county: str = "NC-063", since=SILENT_SINCE) -> CloudEvent:
    data = FeedSilent(
        county_code=county,
        last_event_at=since,
        via="http",
        allowed_seconds=6 * 3600,
        noticed_at=START,
    )
    return CloudEvent.new(
        type=FeedEvent.SILENT,
        source="test/intake",
        subject=county,
        data=data.model_dump(mode="json"),
        time=START,
    )


def resumed(county: str = "NC-063") -> CloudEvent:
    data = FeedResumed(
        county_code=county,
        last_event_at=START + H,
        via="kafka",
        silent_since=SILENT_SINCE,
        noticed_at=START + H,
    )
    return CloudEvent.new(
        type=FeedEvent.RESUMED,
        source="test/intake",
        subject=county,
        data=data.model_dump(mode="json"),
        time=START + H,
    )


async def test_a_silent_feed_pages_whoever_is_on_call_for_the_county_now():
    port, deps = FakeNotifier(), make_deps(ManualClock(START))
    await apply_feed_event(port, silent(), deps)

    [alert] = port.alerts
    schedule = POLICY.document.schedules["oncall-managers"]
    on_duty = on_call(schedule, START)
    assert [r.id for r in alert.recipients] == [on_duty]
    assert alert.reason == "feed_silent"
    assert alert.episode_id is None
    assert "County NC-063" in alert.subject
    assert "7 h" in alert.subject
    assert "phone in" in alert.text
    assert "runbooks.md" in alert.text
    body = alert.webhook_body()
    assert body["county_code"] == "NC-063"
    assert body["last_event_at"] == SILENT_SINCE.isoformat()
    assert "episode_id" not in body
    assert "child" not in body
    # Nothing of an episode is opened or emitted for a feed.
    assert port.obligations == {}
    assert port.events == []


async def test_one_silence_is_one_alert_however_often_it_is_announced():
    port, deps = FakeNotifier(), make_deps(ManualClock(START))
    await apply_feed_event(port, silent(), deps)
    await apply_feed_event(port, silent(), deps)  # another replica, redelivery
    await apply_feed_event(port, silent(since=START - 2 * H), deps)  # a new silence
    first, again, other = port.alerts
    assert first.id == again.id  # deliveries are queued once per alert id
    assert other.id != first.id


async def test_the_all_clear_goes_to_whoever_is_on_call_when_the_feed_is_back():
    port, deps = FakeNotifier(), make_deps(ManualClock(START + H))
    await apply_feed_event(port, resumed(), deps)
    [alert] = port.alerts
    assert alert.reason == "feed_resumed"
    assert "sending again" in alert.subject
    assert "8 h" in alert.text  # silent from SILENT_SINCE to START + 1 h
    assert alert.webhook_body()["silent_since"] == SILENT_SINCE.isoformat()


TOML = """
version = "t"
[contacts.state-it]
name = "State IT desk"
[contacts.county-it]
name = "County IT desk"
email = "it@county.example"
[chains.default]
levels = [{ name = "caseworker", notify = ["caseworker"] }]
[jurisdictions.federal]
%s
[jurisdictions.NV]
on_call = ["contact:state-it"]
[jurisdictions.NV-003]
on_call = ["contact:county-it"]
"""


def test_the_most_specific_jurisdiction_naming_an_on_call_decides():
    policy = parse_policy((TOML % "").encode())
    assert policy.on_call_for("NV-003") == ["contact:county-it"]
    assert policy.on_call_for("NV-001") == ["contact:state-it"]
    assert policy.on_call_for("KY-111") == []  # nobody named: Prometheus only


async def test_nobody_named_on_call_queues_nothing_and_says_so(caplog):
    deps = make_deps(ManualClock(START))
    deps = replace(
        deps, ctx=replace(deps.ctx, policy=parse_policy((TOML % "").encode()))
    )
    port = FakeNotifier()
    await apply_feed_event(port, silent("KY-111"), deps)
    assert port.alerts == []
    assert "names nobody on call" in caplog.text


@pytest.mark.parametrize(
    ("on_call", "problem"),
    [
        ('on_call = ["caseworker"]', "on_call"),
        ('on_call = ["contact:nobody"]', "unknown contact 'nobody'"),
        ('on_call = ["schedule:none"]', "unknown schedule 'none'"),
    ],
)
def test_an_on_call_the_policy_cannot_resolve_is_refused_at_load(on_call, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy((TOML % on_call).encode())


def test_quiet_spans_read_as_a_person_says_them():
    from notifier.domain.feeds import spoken

    assert spoken(timedelta(hours=3, minutes=20)) == "3 h 20 min"
    assert spoken(timedelta(minutes=45)) == "45 min"
    assert spoken(timedelta(seconds=12)) == "12 s"
