"""What every followup handler shares: its dependencies, its metrics (counted here,
never in the domain), the names of its timer steps and whom an alert goes to."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from prometheus_client import CollectorRegistry, Counter, Histogram

import rules
from followup.domain.messages import prompt_alert
from followup.domain.model import Episode, Prompt
from followup.domain.occurrences import AlertReason, alerted
from followup.ports import Followup
from shared.alerting import AlertingContext
from shared.alerts import Alert, Recipient
from shared.events import CloudEvent
from shared.policy import PromptRule
from shared.published import Outgoing, PromptEvent, PromptIssued, outgoing
from shared.timers import Timer

logger = logging.getLogger(__name__)

ISSUE = "issue"
"""A series' timer step: issue its occurrence ``n`` (step key ``issue:<n>``)."""
OVERDUE = "overdue"
"""A prompt's timer step: at its due time, escalate it if it is still open."""


def issue_key(n: int) -> str:
    return f"{ISSUE}:{n}"


def occurrence_of(step_key: str) -> int:
    return int(step_key.split(":")[1])


class FollowupMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter(
            "mfc_prompts_issued_total", "Prompts issued", ["kind"], registry=registry
        )
        self.overdue = Counter(
            "mfc_prompts_overdue_total",
            "Prompts not done in time",
            ["kind"],
            registry=registry,
        )
        self.completion = Histogram(
            "mfc_prompt_completion_seconds",
            "Time from issue to completion",
            ["kind"],
            buckets=(60, 600, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
            registry=registry,
        )


@dataclass(frozen=True)
class Deps:
    """What handlers need besides the port: the policy, clock and routes, metrics."""

    ctx: AlertingContext
    metrics: FollowupMetrics

    def now(self) -> datetime:
        return self.ctx.clock.now()

    def prompt_event(
        self, event_type: PromptEvent, data: PromptIssued, now: datetime
    ) -> Outgoing:
        """A prompt event, keyed by its episode (one episode's events in order)."""
        return outgoing(
            event_type, data, source=self.ctx.source, subject=data.episode_id, time=now
        )

    def people(
        self,
        targets: Sequence[str],
        episode: Episode,
        at: datetime,
        covers: Mapping[str, str] | None = None,
    ) -> list[Recipient]:
        """The people the policy's ``targets`` name for this episode at ``at``
        (``covers``: the on-call overrides in force then)."""
        return rules.resolve(
            self.ctx.policy, list(targets), episode.staff(), at, covers
        )

    def alert(
        self,
        prompt: Prompt,
        episode: Episode,
        rule: PromptRule,
        reason: AlertReason,
        timer: Timer,
        now: datetime,
        covers: Mapping[str, str] | None = None,
    ) -> Alert:
        """The alert of a prompt's step, to the people the rule names for it now."""
        return prompt_alert(
            prompt,
            episode,
            self.people(alerted(rule, reason), episode, now, covers),
            reason=reason,
            alert_id=uuid4(),
            episode_url_template=self.ctx.episode_url_template,
            scheduled_at=timer.fire_at,
        )


async def lock_episode(port: Followup, event: CloudEvent) -> Episode | None:
    episode = await port.lock_episode(UUID(str(event.data.get("episode_id"))))
    if episode is None:
        logger.warning("%s for an episode followup never saw reported", event.type)
    return episode
