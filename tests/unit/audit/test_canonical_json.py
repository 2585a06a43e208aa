"""The fast canonical JSON writes exactly the bytes of the reference RFC 8785
implementation, for any JSON value, or refuses what it refuses."""

import json
from decimal import Decimal
from typing import Any

import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit.domain.entries import (
    as_json_number,
    canonical_json,
    leaf_document,
    leaf_json,
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(as_json_number(value))
    except Exception as exc:  # the refusal itself is compared
        return type(exc)


def ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(JSON)
@example({"b": 1, "a": [1.0, 1e21, -0.0, 2**53, "\u2028\x7f\x1f"]})
@example({"\U0001f600": 1, "\ufb01": 2})  # UTF-16 order differs from code points
@example({"s": "\ud800"})  # a lone surrogate
@example([2**53 - 1, -(2**53 - 1), {"k": [True, None, 0]}])  # the edge of exact ints
@example([{"a": [2**53]}, -(2**53)])  # just beyond it, nested
@example({"name": "Zoë \U0001f600", "b": ["é"]})  # non-ASCII values, ASCII keys
@example({"a": [{"b": [[1, 2.5]]}]})  # a float deep down
@example({"a": [{"é": 1, "\U0001f600": 2, "\ufb01": 3}]})  # non-ASCII keys deep down
@example("\u2028")
@example(2**53)
def test_the_fast_path_writes_the_reference_bytes(value):
    assert ours(value) == reference(value)


def test_an_event_takes_the_fast_path_and_matches():
    event = {
        "specversion": "1.0",
        "id": "e-1",
        "data": {"due_at": "2026-11-24T08:00:00+00:00", "n": 7, "items": ["x", None]},
        "subject": "Zoë",
    }
    assert canonical_json(event) == rfc8785.dumps(event)


def test_json_without_floats_or_large_integers_never_reaches_rfc8785(monkeypatch):
    """The fast path is what makes verify fast: an event of strings, integers
    within ±2^53-1, booleans, nulls, lists and objects, with non-ASCII text, is
    written by orjson alone."""
    event = {
        "id": "e-1",
        "data": {"n": [2**53 - 1, -(2**53 - 1), 0], "ok": True, "none": None},
        "subject": "Zoë \U0001f600",
        "nested": [{"e": "é"}, {"z": []}],
    }
    expected = rfc8785.dumps(event)

    def refuse(value: Any) -> bytes:
        raise AssertionError(f"rfc8785 was asked for {value!r}")

    monkeypatch.setattr(rfc8785, "dumps", refuse)
    assert canonical_json(event) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
@example(3.293195465300683e16)
@example(1e21)
@example(-0.0)
def test_a_float_hashes_the_same_after_a_jsonb_round_trip(number):
    """jsonb keeps a number's decimal digits, not its type: a large float comes back
    as an integer, and must still canonicalise to the bytes it had when appended."""
    text = json.dumps(number)
    back = json.loads(str(Decimal(text)) if "e" in text else text)
    if "e" in text and Decimal(text) == Decimal(text).to_integral_value():
        back = int(Decimal(text))
    assert canonical_json({"x": back}) == canonical_json({"x": number})


def test_a_large_integer_that_is_no_doubles_decimal_is_still_refused():
    try:
        canonical_json({"x": 2**53 + 1})
    except rfc8785.IntegerDomainError:
        return
    raise AssertionError("2**53 + 1 is no double's decimal and must be refused")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8), JSON, max_size=5),
    st.integers(min_value=1, max_value=2**53 - 1),
    st.text(max_size=20),
)
@example({"x": 1e21, "\U0001f600": "\u2028"}, 7, "mfc.episodes.v1")
def test_the_leaf_is_written_from_the_events_own_canonical_json(event, seq, topic):
    """An append writes each event's canonical JSON once and builds the leaf from it."""

    def whole() -> bytes:
        return canonical_json(leaf_document(seq=seq, topic=topic, event=event))

    def from_parts() -> bytes:
        return leaf_json(seq=seq, topic=topic, event_json=canonical_json(event))

    assert outcome(from_parts) == outcome(whole)


def outcome(write: Any) -> bytes | type[Exception]:
    try:
        return write()  # type: ignore[no-any-return]
    except Exception as exc:  # the refusal itself is compared
        return type(exc)
