from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock, SystemClock
from shared.consumer import RetryPolicy


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(
        max_attempts=6,
        initial_backoff=timedelta(seconds=0.5),
        max_backoff=timedelta(seconds=3),
    )
    assert [policy.delay_after(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_manual_clock_moves_only_when_told():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    clock.advance(timedelta(hours=24))
    assert clock.now() == start + timedelta(hours=24)


def test_clocks_refuse_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_system_clock_is_utc():
    assert SystemClock().now().tzinfo is UTC
