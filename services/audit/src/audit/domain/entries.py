"""What a log entry is, as hashed and as shown: the leaf content of the Merkle tree
and the redaction of personal fields. Pure."""

from typing import Any

import rfc8785

from audit.domain.merkle import leaf_hash

PERSONAL_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "date_of_birth",
        "photo_url",
        "distinguishing_marks",
        "endangerments",
        "indian_child",
        # A dead letter keeps the original bytes, which may be a whole report.
        "original_base64",
    }
)
"""Keys whose values are personal data of a child, wherever they appear in an event."""

REDACTED = "[redacted]"


def leaf_document(*, seq: int, topic: str, event: dict[str, Any]) -> dict[str, Any]:
    """The entry as the tree hashes it: its place, its topic and the whole event."""
    return {"seq": seq, "topic": topic, "event": event}


def entry_leaf_hash(*, seq: int, topic: str, event: dict[str, Any]) -> bytes:
    """SHA-256(0x00 || RFC 8785 canonical JSON of the entry)."""
    return leaf_hash(rfc8785.dumps(leaf_document(seq=seq, topic=topic, event=event)))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every personal field replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if key in PERSONAL_FIELDS and item is not None
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def contains_personal_fields(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            (key in PERSONAL_FIELDS and item is not None)
            or contains_personal_fields(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return any(contains_personal_fields(item) for item in value)
    return False
