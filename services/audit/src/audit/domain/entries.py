"""What a log entry is, as hashed and as shown: the leaf content of the Merkle tree
and the redaction of personal fields. Pure."""

from decimal import Decimal
from typing import Any

import orjson
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
        # A county's own data, kept as sent: it may name the child or their family.
        "extensions",
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
    return leaf_hash(leaf_json(seq=seq, topic=topic, event_json=canonical_json(event)))


def leaf_json(*, seq: int, topic: str, event_json: bytes) -> bytes:
    """The canonical JSON of ``leaf_document`` from the event's own canonical JSON,
    so that an append writes each event once for both its hash and its row. The
    keys sort as ``event``, ``seq``, ``topic``; a unit test holds this to
    ``canonical_json(leaf_document(...))``."""
    if type(seq) is int and 0 <= seq <= _MAX_SAFE_INTEGER:
        seq_json = b"%d" % seq  # what RFC 8785 writes for such an integer
    else:
        seq_json = canonical_json(seq)
    topic_json = _topic_json.get(topic) if type(topic) is str else None
    if topic_json is None:
        topic_json = canonical_json(topic)
        if type(topic) is str and len(_topic_json) < _TOPICS_KEPT:
            _topic_json[topic] = topic_json
    return b'{"event":%b,"seq":%b,"topic":%b}' % (event_json, seq_json, topic_json)


_topic_json: dict[str, bytes] = {}
"""The canonical JSON of each topic seen: a log has a handful of topics and verify
writes one per entry."""
_TOPICS_KEPT = 1024


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


_MAX_SAFE_INTEGER = 2**53 - 1


_SCALARS = frozenset({str, int, bool, type(None)})

_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
"""Keys sorted by code point, and any integer beyond IEEE 754's exact range (±2^53-1)
refused, as RFC 8785 refuses it."""


def _no_floats(value: Any) -> bool:
    """Whether ``value`` holds only JSON's own types (exactly ``str``, ``int``,
    ``bool``, ``None``, ``dict``, ``list``) and no float: RFC 8785 writes floats the
    ECMAScript way, orjson does not. A loop over a stack with one set look-up per
    value, not recursion: verify asks this of every entry."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is not dict and kind is not list:
        return False
    pending = [value]
    while pending:
        item = pending.pop()
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind in _SCALARS:
                continue
            if kind is dict or kind is list:
                pending.append(child)
            else:
                return False
    return True


def _ascii_keys(value: Any) -> bool:
    """Whether every key is ASCII (sorted the same by code point, as orjson sorts,
    and by UTF-16 unit, as RFC 8785 sorts)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            for key in item:
                if not key.isascii():
                    return False
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return True


def as_json_number(value: Any) -> Any:
    """``value`` with every integer beyond ±2^53 that is a double's shortest decimal
    taken as that double.

    RFC 8785 numbers are doubles. PostgreSQL's jsonb writes a large float such as
    ``3.293195465300683e+16`` back as the integer ``32931954653006830``, the
    double's shortest decimal; taken as that double again, it hashes as it did when
    appended. Any other large integer is refused (``rfc8785.IntegerDomainError``),
    as before.
    """
    kind = type(value)
    if kind is int and not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        try:
            as_float = float(value)
        except OverflowError:
            return value
        # The integer is what jsonb made of this double: its shortest decimal.
        return as_float if Decimal(repr(as_float)) == value else value
    if kind is dict:
        return {key: as_json_number(item) for key, item in value.items()}
    if kind is list:
        return [as_json_number(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON, with a fast path for the documents our events are.

    ``rfc8785`` is pure Python and spends most of a verify run; where orjson
    provably writes the same bytes it writes them: JSON's own types and no float
    (``_no_floats``), integers within ±2^53-1 (orjson refuses others with
    ``OPT_STRICT_INTEGER``), and ASCII keys (certain when the output is ASCII, else
    looked at). A property test holds the two to byte equality over arbitrary JSON.
    """
    if _no_floats(value):
        try:
            written = orjson.dumps(value, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            # An integer beyond ±2^53-1, a key that is no str, a lone surrogate:
            # rfc8785 writes or refuses it as it always has.
            pass
        else:
            if written.isascii() or _ascii_keys(value):
                return written
    return rfc8785.dumps(as_json_number(value))
