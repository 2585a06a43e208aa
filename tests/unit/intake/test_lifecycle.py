from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.lifecycle import (
    EpisodeState,
    EventInvalidError,
    EventRefusedError,
    apply_event,
)
from intake.domain.model import EpisodeStatus
from shared.events import (
    EpisodeClosedData,
    EpisodeLocatedData,
    EpisodeReportedData,
    EpisodeUpdatedData,
    EventType,
    NotificationRecordedData,
    ScreeningCompletedData,
)
from tests.conftest import make_report

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def missing_episode() -> EpisodeState:
    report = make_report(
        last_seen_at=(NOW - timedelta(hours=5)).isoformat(),
        discovered_at=(NOW - timedelta(hours=4)).isoformat(),
        agency_learned_at=(NOW - timedelta(hours=3)).isoformat(),
    )
    report["child"]["photo_url"] = None
    return EpisodeState(
        status=EpisodeStatus.MISSING, report=EpisodeReportedData.model_validate(report)
    )


def located(at: datetime = NOW - timedelta(hours=1)) -> EpisodeLocatedData:
    return EpisodeLocatedData(located_at=at, location_type="friend's home")


def screening(at: datetime = NOW) -> ScreeningCompletedData:
    return ScreeningCompletedData(
        completed_at=at, trafficking_indicated=False, screened_by="cw-1"
    )


def close(at: datetime = NOW) -> EpisodeClosedData:
    return EpisodeClosedData(
        closed_at=at, reason="returned and debriefed", closed_by="sv-1"
    )


def apply(state, event_type, data):
    return apply_event(state, event_type, data, now=NOW, skew=SKEW)


def test_the_whole_lifecycle_in_order():
    state = missing_episode()
    state = apply(state, EventType.EPISODE_LOCATED, located())
    assert state.status is EpisodeStatus.LOCATED
    state = apply(state, EventType.SCREENING_COMPLETED, screening())
    assert state.screened_at == NOW
    state = apply(state, EventType.EPISODE_CLOSED, close())
    assert state.status is EpisodeStatus.CLOSED


def test_an_update_merges_and_recomputes_completeness():
    state = missing_episode()
    assert "child.photo_url" in state.completeness
    update = EpisodeUpdatedData.model_validate(
        {
            "child": {"photo_url": "https://photos.example.org/2.jpg"},
            "endangerments": {"pregnant": "unknown"},
        }
    )
    updated = apply(state, EventType.EPISODE_UPDATED, update)
    assert "child.photo_url" not in updated.completeness
    assert "endangerments.pregnant" in updated.completeness
    assert updated.report.child.first_name == state.report.child.first_name


def test_extensions_merge_key_by_key_up_to_the_bound():
    state = missing_episode()
    state = replace(
        state,
        report=state.report.model_copy(
            update={"extensions": {f"k{n}": n for n in range(90)}}
        ),
    )
    more = EpisodeUpdatedData(extensions={"k0": "new", "extra": 1})
    updated = apply(state, EventType.EPISODE_UPDATED, more)
    assert updated.report.extensions is not None
    assert updated.report.extensions["k0"] == "new"
    assert len(updated.report.extensions) == 91
    too_many = EpisodeUpdatedData(extensions={f"new{n}": n for n in range(11)})
    with pytest.raises(EventInvalidError) as refused:
        apply(state, EventType.EPISODE_UPDATED, too_many)
    assert refused.value.problems[0].loc == ("extensions",)
    assert "more than 100 keys" in refused.value.problems[0].msg


def test_a_notification_changes_no_state_but_must_not_be_in_the_future():
    state = missing_episode()
    notice = NotificationRecordedData(
        recipient="ncmec",
        method="online",
        notified_at=NOW,
        reference_number="NCMEC-1",
        notified_by="cw-1",
    )
    assert apply(state, EventType.NOTIFICATION_RECORDED, notice) == state
    with pytest.raises(EventInvalidError, match="notified_at"):
        apply(
            state,
            EventType.NOTIFICATION_RECORDED,
            notice.model_copy(update={"notified_at": NOW + timedelta(hours=1)}),
        )


def test_screening_before_located_is_refused():
    with pytest.raises(EventRefusedError, match="after the child is located"):
        apply(missing_episode(), EventType.SCREENING_COMPLETED, screening())


def test_located_twice_is_refused():
    state = apply(missing_episode(), EventType.EPISODE_LOCATED, located())
    with pytest.raises(EventRefusedError, match="already located"):
        apply(state, EventType.EPISODE_LOCATED, located())


def test_a_second_screening_is_refused():
    state = apply(missing_episode(), EventType.EPISODE_LOCATED, located())
    state = apply(state, EventType.SCREENING_COMPLETED, screening())
    with pytest.raises(EventRefusedError, match="already recorded"):
        apply(state, EventType.SCREENING_COMPLETED, screening())


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (EventType.EPISODE_UPDATED, EpisodeUpdatedData(note="sighting")),
        (EventType.EPISODE_LOCATED, located()),
        (EventType.EPISODE_CLOSED, close()),
    ],
)
def test_nothing_applies_after_closing(event_type, data):
    closed = apply(missing_episode(), EventType.EPISODE_CLOSED, close())
    with pytest.raises(EventRefusedError, match="closed"):
        apply(closed, event_type, data)


def test_located_before_last_seen_is_invalid():
    with pytest.raises(EventInvalidError, match="located_at"):
        apply(
            missing_episode(),
            EventType.EPISODE_LOCATED,
            located(NOW - timedelta(days=2)),
        )


def test_screening_before_located_time_is_invalid():
    state = apply(missing_episode(), EventType.EPISODE_LOCATED, located())
    with pytest.raises(EventInvalidError, match="completed_at"):
        apply(state, EventType.SCREENING_COMPLETED, screening(NOW - timedelta(hours=2)))


def test_a_supervisor_may_close_while_still_missing():
    assert (
        apply(missing_episode(), EventType.EPISODE_CLOSED, close()).status
        is EpisodeStatus.CLOSED
    )
