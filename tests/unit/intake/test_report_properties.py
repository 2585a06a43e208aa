"""Property: any JSON at all either validates or is refused with a ValidationError
naming fields; nothing else escapes (which would be a 5xx or a crashed consumer)."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.events import (
    EpisodeReportedData,
    EpisodeUpdatedData,
    NotificationRecordedData,
)
from tests.conftest import make_report


def json_values(*, finite: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value; ``finite`` leaves out NaN and infinity (not sendable as JSON)."""
    floats = st.floats(allow_nan=not finite, allow_infinity=not finite)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=12,
    )


FIELDS = list(make_report().keys())
CHILD_FIELDS = list(make_report()["child"].keys())


@st.composite
def mutated_reports(draw: st.DrawFn, *, finite: bool = False) -> Any:
    values = json_values(finite=finite)
    report = make_report()
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            report[draw(st.sampled_from(FIELDS))] = draw(values)
        elif isinstance(report.get("child"), dict):
            report["child"][draw(st.sampled_from(CHILD_FIELDS))] = draw(values)
    return report


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated_reports(), json_values()))
def test_any_input_validates_or_is_refused_field_by_field(document):
    for model in (EpisodeReportedData, EpisodeUpdatedData, NotificationRecordedData):
        try:
            model.model_validate(document)
        except ValidationError as exc:
            assert exc.errors(), "a refusal names at least one field"  # noqa: PT017
