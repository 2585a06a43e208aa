"""What the notifier tells a county's on-call when the county's system falls silent
(``mfc.feed.silent``) and when it is heard again (``mfc.feed.resumed``). Pure: the
event's data, the people resolved and the time in; the alert out.

One silence is one alert: its id comes from the county and the silence (when the
county was last heard from), so a redelivered or repeated announcement queues
nothing new."""

from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.alerts import Alert, Recipient
from shared.published import FeedResumed, FeedSilent

_IDS = uuid5(NAMESPACE_URL, "urn:missing-from-care:feed-alerts")
RUNBOOK = "docs/runbooks.md#countyfeedsilent"


def alert_id(county_code: str, silent_since: datetime, reason: str) -> UUID:
    return uuid5(_IDS, f"{reason}:{county_code}:{silent_since.isoformat()}")


def silent_alert(
    feed: FeedSilent, recipients: tuple[Recipient, ...], now: datetime
) -> Alert:
    """The page: which county, since when, and what to do while reports may not
    be reaching us."""
    county, since = feed.county_code, feed.last_event_at
    heard = (
        "nothing has come since watching began"
        if feed.via == "watch"
        else f"last heard {since:%Y-%m-%d %H:%M} UTC over {feed.via}"
    )
    quiet = spoken(now - since)
    subject = f"[FEED SILENT] County {county}: no reports from its system for {quiet}"
    text = (
        f"County {county}'s system has sent nothing for {quiet} ({heard}); "
        f"it may keep quiet for {spoken(timedelta(seconds=feed.allowed_seconds))}.\n"
        "Reports of missing children may not be reaching us, and no deadline opens "
        "for a report we never receive.\n"
        "Next: ask the county to phone in any child reported missing meanwhile, and "
        "have its integration checked (credentials, the sending system).\n"
        f"Runbook: {RUNBOOK}\n"
    )
    details = _details(county, since, feed.via)
    return _alert("feed_silent", county, since, subject, text, recipients, now, details)


def resumed_alert(
    feed: FeedResumed, recipients: tuple[Recipient, ...], now: datetime
) -> Alert:
    """The all-clear, to the same people: the county is heard again."""
    county = feed.county_code
    subject = f"[FEED BACK] County {county}: its system is sending again"
    text = (
        f"County {county}'s system was heard again at "
        f"{feed.last_event_at:%Y-%m-%d %H:%M} UTC over {feed.via}, after "
        f"{spoken(feed.last_event_at - feed.silent_since)} of silence.\n"
        "Next: make sure every child the county reported by phone meanwhile is "
        "recorded, with the notices already given.\n"
    )
    details = _details(county, feed.last_event_at, feed.via) | {
        "silent_since": feed.silent_since.isoformat()
    }
    return _alert(
        "feed_resumed",
        county,
        feed.silent_since,
        subject,
        text,
        recipients,
        now,
        details,
    )


def _alert(
    reason: str,
    county: str,
    silent_since: datetime,
    subject: str,
    text: str,
    recipients: tuple[Recipient, ...],
    now: datetime,
    details: dict[str, str],
) -> Alert:
    """An alert about a county's feed: about no episode and no child."""
    return Alert(
        id=alert_id(county, silent_since, reason),
        episode_id=None,
        child=None,
        reason=reason,
        subject=subject,
        text=text,
        episode_url=None,
        recipients=recipients,
        scheduled_at=now,
        details=details,
    )


def _details(county: str, last_event_at: datetime, via: str) -> dict[str, str]:
    return {
        "county_code": county,
        "last_event_at": last_event_at.isoformat(),
        "via": via,
        "runbook": RUNBOOK,
    }


def spoken(span: timedelta) -> str:
    """A span as a person says it: 3 h 20 min, 45 min, 12 s."""
    seconds = max(int(span.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"
