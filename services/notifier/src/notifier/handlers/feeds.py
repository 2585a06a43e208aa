"""County feeds: intake announces a county's system fallen silent or heard again
(``mfc.feeds.v1``); the notifier pages the county's on-call (``on_call`` in the
policy: the county's, else its state's, else the federal baseline's)."""

import logging

from notifier.domain import feeds
from notifier.handlers.common import Deps
from notifier.ports import Notifier
from rules import resolve
from shared.events import CloudEvent
from shared.published import FeedEvent, FeedResumed, FeedSilent

logger = logging.getLogger(__name__)


async def apply_feed_event(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    """Queue the page (or the all-clear) to whoever is on call for the county now."""
    now = deps.now()
    if event.type == FeedEvent.SILENT:
        feed: FeedSilent | FeedResumed = FeedSilent.model_validate(event.data)
    elif event.type == FeedEvent.RESUMED:
        feed = FeedResumed.model_validate(event.data)
    else:
        return  # a type added later: not ours to act on
    policy = deps.ctx.policy
    targets = policy.on_call_for(feed.county_code)
    if not targets:
        logger.error(
            "county %s feed %s, and the policy names nobody on call for it "
            "(on_call): only Prometheus (CountyFeedSilent) alerts",
            feed.county_code,
            event.type,
        )
        return
    covers = await port.covers_at(now)
    people = tuple(resolve(policy, targets, {}, now, covers))
    alert = (
        feeds.silent_alert(feed, people, now)
        if isinstance(feed, FeedSilent)
        else feeds.resumed_alert(feed, people, now)
    )
    await port.alert([alert], now)
    deps.metrics.alerts.labels(alert.reason).inc()
