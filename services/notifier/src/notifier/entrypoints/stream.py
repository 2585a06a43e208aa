"""The notifier's Kafka side: canonical episode events open, satisfy and close
obligations, in batches of up to ``CONSUMER_BATCH_SIZE`` events per transaction."""

from functools import partial

from notifier import handlers
from shared import topics
from shared.alerting import AlertingContext
from shared.consumer import each
from shared.runtime import ServiceRuntime


def register(
    runtime: ServiceRuntime,
    ctx: AlertingContext,
    metrics: handlers.NotifierMetrics,
) -> None:
    runtime.subscribe_batch(
        "notifier-episodes",
        each(partial(handlers.apply_episode_event, ctx=ctx, metrics=metrics)),
        topics.EPISODES,
    )
