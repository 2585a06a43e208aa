"""Is a county's feed alive? Pure: the last time each county's system was heard
from, the silence each may keep, and the time now, in; each feed's health out, and
which silences to announce (``changes``) so that the county's on-call is paged once
per silence, whichever replica sees it first."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.published import FeedEvent, FeedResumed, FeedSilent

ANY_COUNTY = "*"


@dataclass(frozen=True)
class Heard:
    county_code: str
    at: datetime
    via: str  # http | kafka | watch (watching began: nothing heard yet)


@dataclass(frozen=True)
class FeedHealth:
    county_code: str
    last_event_at: datetime
    via: str
    quiet_for: timedelta
    allowed: timedelta
    announced: datetime | None = None
    """The ``last_event_at`` of the silence announced and not yet over."""

    @property
    def silent(self) -> bool:
        return self.quiet_for > self.allowed


def watched(
    counties: Iterable[str], silence_after: Mapping[str, timedelta]
) -> dict[str, timedelta]:
    """The silence each served county may keep: its own entry, else ``*``'s; a
    county with neither is not watched."""
    allowed = {}
    for county in counties:
        after = silence_after.get(county, silence_after.get(ANY_COUNTY))
        if after is not None:
            allowed[county] = after
    return allowed


def health(
    last: Iterable[Heard],
    allowed: Mapping[str, timedelta],
    now: datetime,
    announced: Mapping[str, datetime] | None = None,
) -> list[FeedHealth]:
    """The health of every watched feed with a last event (watching gives each one
    at its start), by county code; ``announced``: the silences announced so far."""
    announced = announced or {}
    return sorted(
        (
            FeedHealth(
                county_code=h.county_code,
                last_event_at=h.at,
                via=h.via,
                quiet_for=max(now - h.at, timedelta(0)),
                allowed=allowed[h.county_code],
                announced=announced.get(h.county_code),
            )
            for h in last
            if h.county_code in allowed
        ),
        key=lambda f: f.county_code,
    )


@dataclass(frozen=True)
class Change:
    """A silence to announce as begun (``silent``) or as over."""

    feed: FeedHealth
    silent: bool

    def event(self, now: datetime) -> tuple[str, BaseModel]:
        """Its ``mfc.feeds.v1`` event: type and data."""
        f = self.feed
        if self.silent:
            return FeedEvent.SILENT, FeedSilent(
                county_code=f.county_code,
                last_event_at=f.last_event_at,
                via=f.via,
                allowed_seconds=f.allowed.total_seconds(),
                noticed_at=now,
            )
        assert f.announced is not None
        return FeedEvent.RESUMED, FeedResumed(
            county_code=f.county_code,
            last_event_at=f.last_event_at,
            via=f.via,
            silent_since=f.announced,
            noticed_at=now,
        )


def changes(
    feeds: Iterable[FeedHealth], grace: timedelta = timedelta(0)
) -> list[Change]:
    """What to announce: a silence not announced yet, and the end of one that was
    (heard again; if it fell silent again before the check saw it, both).

    A silence is over only when the county was heard again: a feed that merely
    stops counting as silent (a replica's clock or allowance differs) is not news.
    ``grace``: how much longer than its allowance a feed must be quiet before its
    silence is announced (one check interval: another replica may hold what it
    heard that long before saving it)."""
    found = []
    for feed in feeds:
        over = feed.announced is not None and feed.announced != feed.last_event_at
        if over:
            found.append(Change(feed, silent=False))
        if feed.quiet_for > feed.allowed + grace and (feed.announced is None or over):
            found.append(Change(feed, silent=True))
    return found


def announced_after(change: Change) -> datetime | None:
    """What stays announced once a change is published: the silence, if any."""
    return change.feed.last_event_at if change.silent else None
