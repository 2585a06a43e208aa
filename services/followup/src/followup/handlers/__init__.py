"""Followup's service layer: load through the port, decide in ``followup.domain``,
save, emit. By feature: episode events, timer-fired occurrences, completion."""

from followup.domain.model import PromptNotFoundError, PromptNotOpenError
from followup.handlers.common import Deps, FollowupMetrics
from followup.handlers.completion import complete_by_event, complete_prompt
from followup.handlers.covers import apply_schedule_event
from followup.handlers.episodes import handle_episode_event, handle_episode_events
from followup.handlers.occurrences import fire_batch, fire_step, fire_steps

__all__ = [
    "Deps",
    "FollowupMetrics",
    "PromptNotFoundError",
    "PromptNotOpenError",
    "apply_schedule_event",
    "complete_by_event",
    "complete_prompt",
    "fire_batch",
    "fire_step",
    "fire_steps",
    "handle_episode_event",
    "handle_episode_events",
]
