"""Followup's Kafka side: canonical episode events start and end prompt series,
in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction."""

from functools import partial

from followup import handlers
from shared import topics
from shared.alerting import AlertingContext
from shared.consumer import each
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime,
    ctx: AlertingContext,
    metrics: handlers.FollowupMetrics,
) -> None:
    runtime.subscribe_batch(
        "followup-episodes",
        each(partial(handlers.apply_episode_event, ctx=ctx, metrics=metrics)),
        topics.EPISODES,
    )
