"""The AsyncAPI 3.0 document of our topics, built from the event models themselves.

FastStream can generate AsyncAPI from subscriber signatures, but ours take the raw
message (parsing is ours, so bad input can be dead-lettered with its bytes), and one
topic carries several CloudEvent types; FastStream would document only an opaque
body. This builds the document from ``shared.events`` instead: one message per
CloudEvent type, with the JSON schema of its ``data``.
"""

from typing import Any

from pydantic import BaseModel

from shared import topics
from shared.events import (
    CANONICAL_DATA,
    INBOUND_DATA,
    CloudEvent,
    DeadLetter,
    EventType,
)
from shared.published import PUBLISHED

_SERVICES: dict[str, dict[str, list[str]]] = {
    "intake": {
        "receive": [topics.INBOUND, topics.OBLIGATIONS, topics.PROMPTS],
        "send": [topics.EPISODES, topics.DEADLETTER],
    },
    "notifier": {
        "receive": [topics.EPISODES],
        "send": [topics.OBLIGATIONS, topics.ALERTS, topics.DEADLETTER],
    },
    "followup": {
        "receive": [topics.EPISODES],
        "send": [topics.PROMPTS, topics.ALERTS, topics.DEADLETTER],
    },
    "audit": {
        "receive": list(topics.ALL),
        "send": [topics.AUDIT_CHECKPOINTS, topics.DEADLETTER],
    },
}
"""Who sends and receives what."""


def _message_name(event_type: str, topic: str) -> str:
    suffix = "Inbound" if topic == topics.INBOUND else ""
    return "".join(part.capitalize() for part in event_type.split(".")[1:]) + suffix


def _message(event_type: str, data_model: type[BaseModel]) -> dict[str, Any]:
    envelope = CloudEvent.model_json_schema()
    envelope["properties"]["type"] = {"const": event_type}
    envelope["properties"]["data"] = data_model.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    defs = envelope["properties"]["data"].pop("$defs", {})
    return {
        "name": event_type,
        "title": event_type,
        "contentType": "application/json",
        "summary": (data_model.__doc__ or "").strip().split("\n")[0],
        "payload": envelope,
        "x-defs": defs,
    }


def build() -> dict[str, Any]:
    per_topic: dict[str, dict[str, type[BaseModel]]] = {
        topics.INBOUND: dict(INBOUND_DATA),
        topics.EPISODES: dict(CANONICAL_DATA),
        topics.DEADLETTER: {EventType.DEADLETTER_RECORDED: DeadLetter},
        **PUBLISHED,
    }
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for topic in topics.ALL:
        channel_messages = {}
        for event_type, model in per_topic.get(topic, {}).items():
            name = _message_name(event_type, topic)
            message = _message(event_type, model)
            schemas.update(message.pop("x-defs"))
            messages[name] = message
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[topic] = {
            "address": topic,
            "description": (
                "Kafka topic, keyed by episode id (a heartbeat: by county code); "
                "CloudEvents 1.0 structured JSON."
                if topic == topics.INBOUND
                else "Kafka topic, keyed by episode id; CloudEvents 1.0 structured JSON."
            ),
            "messages": channel_messages,
        }
    operations: dict[str, Any] = {}
    for service, directions in _SERVICES.items():
        for action, service_topics in directions.items():
            for topic in service_topics:
                operations[f"{service}.{action}.{topic}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{topic}"},
                    "summary": f"{service} {action}s {topic}",
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "missing-from-care events",
            "version": "1",
            "description": "Every topic of missing-from-care (see docs/events.md).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
