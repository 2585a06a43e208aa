"""Is a county's feed alive: the pure rules, with the time passed in."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from intake.config import IntakeSettings
from intake.domain.feeds import Heard, announced_after, changes, health, watched
from shared.published import FeedEvent, FeedResumed, FeedSilent

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_each_county_keeps_its_own_silence_else_the_default():
    allowed = watched(["NC-063", "KY-111", "MO-510"], {"*": 6 * H, "NC-063": H / 2})
    assert allowed == {"NC-063": H / 2, "KY-111": 6 * H, "MO-510": 6 * H}
    # Without a default only the named counties are watched.
    assert watched(["NC-063", "KY-111"], {"NC-063": H}) == {"NC-063": H}


def test_a_feed_is_silent_only_once_quiet_longer_than_it_may_be():
    allowed = {"NC-063": H, "KY-111": 2 * H}
    feeds = health(
        [
            Heard("NC-063", NOW - H - timedelta(seconds=1), "kafka"),
            Heard("KY-111", NOW - H, "http"),
            Heard("TX-201", NOW - 100 * H, "http"),  # not watched: left out
        ],
        allowed,
        NOW,
    )
    assert [(f.county_code, f.silent) for f in feeds] == [
        ("KY-111", False),
        ("NC-063", True),
    ]
    assert feeds[1].quiet_for == H + timedelta(seconds=1)
    # Exactly at its allowance a feed is not yet silent.
    [edge] = health([Heard("NC-063", NOW - H, "http")], allowed, NOW)
    assert not edge.silent


def test_a_county_never_heard_counts_from_when_watching_began():
    [feed] = health([Heard("NC-063", NOW - 2 * H, "watch")], {"NC-063": H}, NOW)
    assert feed.silent
    assert feed.via == "watch"


def test_a_silence_is_announced_once_and_its_end_once():
    allowed = {"NC-063": H}
    last = NOW - 2 * H
    [quiet] = health([Heard("NC-063", last, "http")], allowed, NOW)
    [change] = changes([quiet])
    assert change.silent
    event_type, data = change.event(NOW)
    assert event_type == FeedEvent.SILENT
    assert data == FeedSilent(
        county_code="NC-063",
        last_event_at=last,
        via="http",
        allowed_seconds=3600.0,
        noticed_at=NOW,
    )
    # Announced: the next checks (any replica's) have nothing to say.
    assert announced_after(change) == last
    still = health([Heard("NC-063", last, "http")], allowed, NOW + H, {"NC-063": last})
    assert changes(still) == []

    # Heard again: the end of that silence, once.
    heard = NOW + H
    [alive] = health(
        [Heard("NC-063", heard, "kafka")], allowed, heard, {"NC-063": last}
    )
    [over] = changes([alive])
    assert not over.silent
    assert over.event(heard)[1] == FeedResumed(
        county_code="NC-063",
        last_event_at=heard,
        via="kafka",
        silent_since=last,
        noticed_at=heard,
    )
    assert announced_after(over) is None
    assert changes(health([Heard("NC-063", heard, "kafka")], allowed, heard)) == []


def test_heard_and_silent_again_between_checks_ends_one_silence_and_begins_another():
    allowed = {"NC-063": H}
    first, second = NOW - 5 * H, NOW - 2 * H
    [feed] = health([Heard("NC-063", second, "http")], allowed, NOW, {"NC-063": first})
    ended, began = changes([feed])
    assert (ended.silent, began.silent) == (False, True)
    assert ended.event(NOW)[1].silent_since == first  # type: ignore[attr-defined]
    assert announced_after(ended) is None
    assert announced_after(began) == second


def test_a_feed_no_longer_silent_without_being_heard_is_not_announced_as_back():
    """Another replica's clock a little behind, or a larger allowance during a
    rolling deploy: nothing was heard, so no all-clear."""
    last = NOW - 2 * H
    [feed] = health(
        [Heard("NC-063", last, "http")], {"NC-063": 3 * H}, NOW, {"NC-063": last}
    )
    assert not feed.silent
    assert changes([feed]) == []


def test_a_silence_is_announced_only_past_its_allowance_and_the_grace():
    allowed = {"NC-063": H}
    [feed] = health(
        [Heard("NC-063", NOW - H - timedelta(seconds=20), "http")], allowed, NOW
    )
    assert feed.silent
    assert changes([feed], grace=timedelta(seconds=30)) == []
    assert [c.silent for c in changes([feed], grace=timedelta(seconds=10))] == [True]


def settings(monkeypatch, silence: str) -> IntakeSettings:
    for key, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "DATABASE_URL": "postgresql://x@/y",
        "INTAKE_COUNTIES": "NC-063",
        "INTAKE_FEED_SILENCE_AFTER": silence,
    }.items():
        monkeypatch.setenv(key, value)
    return IntakeSettings()


def test_the_silence_setting_is_read_per_county(monkeypatch):
    got = settings(monkeypatch, '{"*": "6h", "nc-063": "30m"}').feed_silence_after
    assert got == {"*": 6 * H, "NC-063": H / 2}


@pytest.mark.parametrize(
    ("silence", "problem"),
    [
        ('{"XX-999": "1h"}', "not US county codes: XX-999"),
        ('{"NC-063": "0s"}', "silence must be at least 1s: NC-063"),
        ('{"NC-063": "soon"}', "feed_silence_after"),
    ],
)
def test_a_bad_silence_setting_is_refused_at_start_up(monkeypatch, silence, problem):
    with pytest.raises(ValidationError, match=problem):
        settings(monkeypatch, silence)


def test_a_watched_county_must_be_served_and_the_check_not_a_hot_loop(monkeypatch):
    with pytest.raises(ValidationError, match=r"not served here .*: KY-111"):
        settings(monkeypatch, '{"KY-111": "1h"}')
    monkeypatch.setenv("INTAKE_FEED_CHECK_INTERVAL", "0s")
    with pytest.raises(ValidationError, match="at least 100ms"):
        settings(monkeypatch, '{"NC-063": "1h"}')
