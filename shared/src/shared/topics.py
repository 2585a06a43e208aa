"""Kafka topic names. Every topic is keyed by episode id so one episode stays in order
(a county's heartbeat on the inbound topic and its feed's health on ``FEEDS``: by its
county code; a schedule's changes on ``SCHEDULES``: by its name; a policy file on
``POLICIES``: by its sha256)."""

from typing import Final

INBOUND: Final = "mfc.inbound.v1"
EPISODES: Final = "mfc.episodes.v1"
DEADLETTER: Final = "mfc.deadletter.v1"
OBLIGATIONS: Final = "mfc.obligations.v1"
ALERTS: Final = "mfc.alerts.v1"
PROMPTS: Final = "mfc.prompts.v1"
AUDIT_CHECKPOINTS: Final = "mfc.audit.checkpoints.v1"
FEEDS: Final = "mfc.feeds.v1"
SCHEDULES: Final = "mfc.schedules.v1"
POLICIES: Final = "mfc.policies.v1"

ALL: Final = (
    INBOUND,
    EPISODES,
    DEADLETTER,
    OBLIGATIONS,
    ALERTS,
    PROMPTS,
    AUDIT_CHECKPOINTS,
    FEEDS,
    SCHEDULES,
    POLICIES,
)

# Topics only our own services write, from data they validated: the size bound
# (MAX_MESSAGE_BYTES) protects against what others send and is not applied here, so
# that an event built from an accepted report (envelope and completeness added) or a
# dead letter of a large message is never refused for its size downstream.
OWN: Final = frozenset(ALL) - {INBOUND}

# The audit service subscribes by pattern, so a topic added later is audited
# without a code change.
AUDITED_PATTERN: Final = r"mfc\..*"

DEFAULT_PARTITIONS: Final = 3
