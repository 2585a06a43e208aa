"""The fuzzing's own checks (tests/fuzz_checks.py) catch what they are for: an
error answer that repeats a child's name, an answer that holds another county."""

from types import SimpleNamespace

import pytest

from tests.fuzz_checks import no_personal_input_echoed, only_own_county

REPORT = {"county_code": "CA-037", "child": {"first_name": "Marisol", "sex": "x"}}


def answer(status: int, text: str, data=None):
    return SimpleNamespace(
        status_code=status,
        text=text,
        headers={"content-type": ["application/json"]},
        json=lambda: data if data is not None else {},
    )


def test_a_refusal_that_repeats_a_name_fails_and_one_that_names_the_field_passes():
    case = SimpleNamespace(body=REPORT)
    with pytest.raises(AssertionError, match="repeats a personal field"):
        no_personal_input_echoed(None, answer(422, '{"input": "Marisol"}'), case)
    fine = '{"detail": [{"loc": ["body", "child", "sex"], "msg": "unknown"}]}'
    assert no_personal_input_echoed(None, answer(422, fine), case) is None
    # A success may hold the report itself: that is its owner reading it.
    assert no_personal_input_echoed(None, answer(201, "Marisol"), case) is None


def test_an_answer_holding_another_county_fails():
    case = SimpleNamespace(body=None)
    own = {"episodes": [{"county_code": "CA-037"}, {"county_code": None}]}
    assert only_own_county(None, answer(200, "", own), case) is None
    other = {"entries": [{"event": {"data": {"county_code": "TX-201"}}}]}
    with pytest.raises(AssertionError, match="TX-201"):
        only_own_county(None, answer(200, "", other), case)


def test_a_value_that_is_a_fields_name_is_not_an_echo():
    case = SimpleNamespace(body={"child": {"last_name": "date_of_birth"}})
    detail = {"detail": [{"loc": ["body", "child", "date_of_birth"], "msg": "bad"}]}
    refusal = answer(422, '{"loc": ["body", "child", "date_of_birth"]}', detail)
    assert no_personal_input_echoed(None, refusal, case) is None
