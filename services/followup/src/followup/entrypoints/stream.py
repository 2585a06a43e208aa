"""Followup's Kafka side: canonical episode events start and end prompt series."""

from functools import partial

from followup import handlers
from shared import topics
from shared.alerting import AlertingContext
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime,
    ctx: AlertingContext,
    metrics: handlers.FollowupMetrics,
) -> None:
    runtime.subscribe(
        "followup-episodes",
        partial(handlers.apply_episode_event, ctx=ctx, metrics=metrics),
        topics.EPISODES,
    )
