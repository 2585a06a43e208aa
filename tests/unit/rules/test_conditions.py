import pytest

from rules import EpisodeFacts, holds
from shared.events import Circumstance
from shared.policy import Condition

FACTS = EpisodeFacts(
    age_years=15,
    endangered=True,
    circumstance=Circumstance.RUNAWAY,
    trafficking_indicated=None,
    indian_child=None,
)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({}, True),
        ({"age_under": 16, "endangered": True}, True),
        ({"age_under": 15}, False),
        ({"age_at_least": 15}, True),
        ({"age_at_least": 16}, False),
        ({"circumstance_in": ["runaway"]}, True),
        ({"circumstance_in": ["family_abduction"]}, False),
        ({"trafficking_indicated": False}, False),
        ({"indian_child": True}, False),
        ({"any_of": [{"age_under": 12}, {"endangered": True}]}, True),
        ({"any_of": [{"age_under": 12}, {"endangered": False}]}, False),
        ({"age_under": 16, "any_of": [{"endangered": False}]}, False),
    ],
)
def test_every_named_fact_must_hold_and_one_of_any_of(when, expected):
    assert holds(Condition.model_validate(when), FACTS) is expected


def test_an_unknown_answer_meets_neither_yes_nor_no():
    for answer in (True, False):
        assert not holds(Condition(indian_child=answer), FACTS)
        assert not holds(Condition(trafficking_indicated=answer), FACTS)
