"""Is a county's feed alive? Pure: the last time each county's system was heard
from, the silence each may keep, and the time now, in; each feed's health out."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    last: Iterable[Heard], allowed: Mapping[str, timedelta], now: datetime
) -> list[FeedHealth]:
    """The health of every watched feed with a last event (watching gives each one
    at its start), by county code."""
    return sorted(
        (
            FeedHealth(
                county_code=h.county_code,
                last_event_at=h.at,
                via=h.via,
                quiet_for=max(now - h.at, timedelta(0)),
                allowed=allowed[h.county_code],
            )
            for h in last
            if h.county_code in allowed
        ),
        key=lambda f: f.county_code,
    )


def newly_silent(before: Iterable[FeedHealth], now: Iterable[FeedHealth]) -> list[str]:
    """Counties whose feed was not silent at the last check and is now."""
    was = {f.county_code for f in before if f.silent}
    return [f.county_code for f in now if f.silent and f.county_code not in was]
