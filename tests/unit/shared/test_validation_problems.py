"""A 422 names where the problem is without echoing what was sent: a sender's
unknown key is escaped and cut (before, a 100 kB key came back whole in ``loc``)."""

from shared.runtime import validation_problems


def test_a_long_or_unprintable_key_is_cut_and_escaped_and_indexes_stay_numbers():
    long_key = "k" * 10_000
    [long, unprintable, listed] = validation_problems(
        [
            {
                "loc": ("body", long_key),
                "msg": "Extra inputs",
                "type": "extra_forbidden",
            },
            {
                "loc": ("body", "a\x00b"),
                "msg": "Extra inputs",
                "type": "extra_forbidden",
            },
            {
                "loc": ("body", "items", 2, "name"),
                "msg": "Field required",
                "type": "missing",
            },
        ]
    )
    assert long["loc"] == ["body", "k" * 61 + "..."]
    assert unprintable["loc"] == ["body", "a\\x00b"]
    assert listed == {
        "loc": ["body", "items", 2, "name"],
        "msg": "Field required",
        "type": "missing",
    }


def test_the_value_sent_is_never_part_of_a_problem():
    [problem] = validation_problems(
        [
            {
                "loc": ("body", "child", "sex"),
                "msg": "Input should be 'female', 'male', 'other' or 'unknown'",
                "type": "enum",
                "input": "Marisol Testchild",
                "ctx": {"expected": "..."},
            }
        ]
    )
    assert set(problem) == {"loc", "msg", "type"}
