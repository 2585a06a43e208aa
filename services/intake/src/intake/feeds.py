"""Watching each county's feed: the most dangerous failure is silent (expired
credentials, a crashed integration: no report arrives, no obligation opens, nothing
alerts). Intake notes when each county was last heard from, in memory as events
arrive; every ``INTAKE_FEED_CHECK_INTERVAL`` it saves that for all replicas (one
statement) and sets the gauges from what all replicas saved, so every replica
reports the same. A feed quiet past its ``INTAKE_FEED_SILENCE_AFTER`` is silent:
``mfc_feed_silent`` is 1 and Prometheus alerts (CountyFeedSilent, docs/runbooks.md).

A crash loses at most one interval of "heard" notes: a feed may then look quiet for
that much longer, never livelier than it was.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from intake.adapters import postgres
from intake.domain.feeds import FeedHealth, Heard, health, newly_silent, watched
from shared.clock import Clock
from shared.periodic import Periodic

logger = logging.getLogger(__name__)


class FeedWatch:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock,
        registry: CollectorRegistry,
        counties: frozenset[str],
        silence_after: Mapping[str, timedelta],
        interval: timedelta,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._allowed = watched(sorted(counties), silence_after)
        self._heard: dict[str, Heard] = {}
        self._last: list[FeedHealth] = []
        self._periodic = Periodic(
            "feed-watch", self.check, interval=interval.total_seconds()
        )
        self.last_event = Gauge(
            "mfc_feed_last_event_timestamp_seconds",
            "When the county's system was last heard from (Unix time), any replica",
            ["county_code"],
            registry=registry,
        )
        self.quiet = Gauge(
            "mfc_feed_quiet_seconds",
            "How long the county's system has been quiet",
            ["county_code"],
            registry=registry,
        )
        self.checked = Gauge(
            "mfc_feed_checked_timestamp_seconds",
            "When this replica last saved and judged the feeds (Unix time); a stale "
            "value means the other feed gauges are stale too",
            registry=registry,
        )
        self.silent = Gauge(
            "mfc_feed_silent",
            "1 if the county's feed has been quiet longer than it may be",
            ["county_code"],
            registry=registry,
        )

    def heard(self, county_code: str, via: str) -> None:
        """Note an accepted event or heartbeat from ``county_code`` (no I/O)."""
        self._heard[county_code] = Heard(county_code, self._clock.now(), via)

    async def check(self) -> list[FeedHealth]:
        """Save what this replica heard, then judge every watched feed."""
        heard, self._heard = self._heard, {}
        try:
            async with self._pool().acquire() as conn:
                await postgres.save_heard(conn, list(heard.values()))
                feeds = health(
                    await postgres.last_heard(conn), self._allowed, self._clock.now()
                )
        except BaseException:
            # Kept for the next round, unless a newer note came meanwhile.
            self._heard = {**heard, **self._heard}
            raise
        for county in newly_silent(self._last, feeds):
            logger.warning("county %s feed silent", county)
        self._last = feeds
        self.checked.set(self._clock.now().timestamp())
        for feed in feeds:
            self.last_event.labels(feed.county_code).set(feed.last_event_at.timestamp())
            self.quiet.labels(feed.county_code).set(feed.quiet_for.total_seconds())
            self.silent.labels(feed.county_code).set(1 if feed.silent else 0)
        return feeds

    async def start(self) -> None:
        if self._allowed:
            async with self._pool().acquire() as conn:
                await postgres.start_watching(
                    conn, sorted(self._allowed), self._clock.now()
                )
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        try:
            await self.check()  # what was heard since the last round
        except Exception as exc:  # stopping must go on: the relay, the pool
            logger.warning("feed notes not saved at stop: %s", exc)
