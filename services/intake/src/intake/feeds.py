"""Watching each county's feed: the most dangerous failure is silent (expired
credentials, a crashed integration: no report arrives, no obligation opens, nothing
alerts). Intake notes when each county was last heard from, in memory as events
arrive; every ``INTAKE_FEED_CHECK_INTERVAL`` it saves that for all replicas (one
statement) and sets the gauges from what all replicas saved, so every replica
reports the same. A feed quiet past its ``INTAKE_FEED_SILENCE_AFTER`` is silent:
``mfc_feed_silent`` is 1 and Prometheus alerts (CountyFeedSilent, docs/runbooks.md).

A silence is also announced once on ``mfc.feeds.v1`` (``mfc.feed.silent``, and
``mfc.feed.resumed`` when the county is heard again), through the outbox in the
transaction that marks it announced on the county's row: replicas take the rows in
turn, so one silence is announced once, and a restart does not announce it again.
The notifier pages the county's on-call from it.

A crash loses at most one interval of "heard" notes: a feed may then look quiet for
that much longer, never livelier than it was.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from intake.adapters import postgres
from intake.domain.feeds import (
    Change,
    FeedHealth,
    Heard,
    announced_after,
    changes,
    health,
    watched,
)
from shared.clock import Clock
from shared.db import Conn
from shared.outbox import enqueue_many
from shared.periodic import Periodic
from shared.published import Outgoing, outgoing

logger = logging.getLogger(__name__)


class FeedWatch:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock,
        source: str,
        registry: CollectorRegistry,
        counties: frozenset[str],
        silence_after: Mapping[str, timedelta],
        interval: timedelta,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._source = source
        self._interval = interval
        self._allowed = watched(sorted(counties), silence_after)
        self._heard: dict[str, Heard] = {}
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
        """Save what this replica heard, judge every watched feed, and announce
        the silences that began or ended."""
        heard, self._heard = self._heard, {}
        try:
            async with self._pool().acquire() as conn:
                await postgres.save_heard(conn, sorted(heard.values(), key=_county))
                feeds = await self._judge(conn)
        except BaseException:
            # Kept for the next round, unless a newer note came meanwhile.
            self._heard = {**heard, **self._heard}
            raise
        self.checked.set(self._clock.now().timestamp())
        for feed in feeds:
            self.last_event.labels(feed.county_code).set(feed.last_event_at.timestamp())
            self.quiet.labels(feed.county_code).set(feed.quiet_for.total_seconds())
            self.silent.labels(feed.county_code).set(1 if feed.silent else 0)
        return feeds

    async def _judge(self, conn: Conn) -> list[FeedHealth]:
        async with conn.transaction():
            last, announced = await postgres.lock_feeds(conn)
            now = self._clock.now()
            feeds = health(last, self._allowed, now, announced)
            found = changes(feeds, grace=self._interval)
            if found:
                # The last change of a county wins (an end, then a new silence).
                await postgres.set_announced(
                    conn, {c.feed.county_code: announced_after(c) for c in found}
                )
                await enqueue_many(conn, [self._event(c, now) for c in found])
        for change in found:
            logger.warning(
                "county %s feed %s (last heard %s via %s)",
                change.feed.county_code,
                "silent" if change.silent else "heard again",
                change.feed.last_event_at.isoformat(),
                change.feed.via,
            )
        return feeds

    def _event(self, change: Change, now: datetime) -> Outgoing:
        event_type, data = change.event(now)
        return outgoing(
            event_type,
            data,
            source=self._source,
            subject=change.feed.county_code,
            time=now,
        )

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


def _county(heard: Heard) -> str:
    return heard.county_code
