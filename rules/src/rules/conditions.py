"""Whether a rule applies to an episode: its ``when`` condition read against the
episode's facts. Pure."""

from rules.facts import EpisodeFacts
from shared.policy import Condition


def holds(condition: Condition, facts: EpisodeFacts) -> bool:
    """A rule's ``when`` condition: every fact it names matches, and one ``any_of``."""
    return (
        (condition.age_under is None or facts.age_years < condition.age_under)
        and (
            condition.age_at_least is None or facts.age_years >= condition.age_at_least
        )
        and _answer_is(condition.endangered, facts.endangered)
        and (
            condition.circumstance_in is None
            or facts.circumstance in condition.circumstance_in
        )
        and _answer_is(condition.trafficking_indicated, facts.trafficking_indicated)
        and _answer_is(condition.indian_child, facts.indian_child)
        and (
            condition.any_of is None
            or any(holds(alternative, facts) for alternative in condition.any_of)
        )
    )


def _answer_is(wanted: bool | None, fact: bool | None) -> bool:
    """A yes/no condition: unset asks nothing; set, an unknown fact never matches."""
    return wanted is None or fact == wanted
