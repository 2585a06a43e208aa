"""Followup's Kafka side: canonical episode events."""

from followup.handlers import make_episode_handler
from shared import topics
from shared.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    runtime.subscribe(
        "followup-episodes", make_episode_handler(runtime.registry), topics.EPISODES
    )
