"""Notifier's Kafka side: canonical episode events."""

from notifier.handlers import make_episode_handler
from shared import topics
from shared.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    runtime.subscribe(
        "notifier-episodes", make_episode_handler(runtime.registry), topics.EPISODES
    )
