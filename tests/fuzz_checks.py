"""Checks of our own for schemathesis (loaded with ``SCHEMATHESIS_HOOKS``): an error
answer never echoes a child's personal data from the request, and no answer holds
another county's data for a token scoped to ``MFC_FUZZ_COUNTY``."""

import os
from collections.abc import Iterator
from typing import Any

import schemathesis

from audit.domain.entries import PERSONAL_FIELDS

OWN = os.environ.get("MFC_FUZZ_COUNTY", "CA-037")
SHORTEST = 6
"""Shorter strings match by chance (``true``, a digit run): not evidence of an echo."""
VOCABULARY = frozenset({"unknown", "http://", "https://"})
"""Values the contract itself offers (an answer may name them as choices)."""


def personal_strings(value: Any, personal: bool = False) -> Iterator[str]:
    """Every string in ``value`` that sits under a personal key."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from personal_strings(item, personal or key in PERSONAL_FIELDS)
    elif isinstance(value, list):
        for item in value:
            yield from personal_strings(item, personal)
    elif (
        personal
        and isinstance(value, str)
        and len(value.strip()) >= SHORTEST
        and value.strip().lower() not in VOCABULARY
    ):
        yield value


def counties(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "county_code" and isinstance(item, str):
                yield item
            else:
                yield from counties(item)
    elif isinstance(value, list):
        for item in value:
            yield from counties(item)


def field_names(response: Any) -> Iterator[str]:
    """The fields a refusal names (``loc``): a value that happens to be a field's
    name (``"last_name": "date_of_birth"``) is in the answer as that name."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return
    for problem in detail if isinstance(detail, list) else []:
        if isinstance(problem, dict):
            yield from (str(p) for p in problem.get("loc", []))


@schemathesis.check
def no_personal_input_echoed(ctx: Any, response: Any, case: Any) -> bool | None:
    """A refusal says which field is wrong, never what it held."""
    if response.status_code < 400 or not isinstance(case.body, (dict, list)):
        return None
    text = response.text
    named = set(field_names(response))
    for value in personal_strings(case.body):
        if value in text and value not in named:
            raise AssertionError(
                f"a {response.status_code} answer repeats a personal field's value"
            )
    return None


@schemathesis.check
def only_own_county(ctx: Any, response: Any, case: Any) -> bool | None:
    """What a county-scoped token is answered holds its county's data only."""
    if response.status_code >= 400:
        return None
    if "json" not in response.headers.get("content-type", [""])[0]:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    others = {c for c in counties(data) if c.upper() != OWN}
    if others:
        raise AssertionError(f"an answer to a {OWN} token holds {sorted(others)}")
    return None
