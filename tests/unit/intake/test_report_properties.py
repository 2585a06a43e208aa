"""Property: any JSON at all either validates or is refused with a ValidationError
naming fields; nothing else escapes (which would be a 5xx or a crashed consumer)."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from intake.domain.model import completeness, digest, report_digest
from intake.handlers import IntakeContext, canonical_report
from shared.clock import SystemClock
from shared.events import (
    CloudEvent,
    EpisodeReported,
    EpisodeReportedData,
    EpisodeUpdatedData,
    EventType,
    InvalidEventError,
    NotificationRecordedData,
)
from shared.policy import default_policy_path, load_policy
from tests.conftest import make_report

POLICY = load_policy(default_policy_path())


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
        where = draw(st.sampled_from(["report", "child", "unknown", "child-unknown"]))
        if where == "report":
            report[draw(st.sampled_from(FIELDS))] = draw(values)
        elif not isinstance(report.get("child"), dict):
            continue
        elif where == "child":
            report["child"][draw(st.sampled_from(CHILD_FIELDS))] = draw(values)
        else:  # a key the contract does not have, at the top or in the child
            target = report if where == "unknown" else report["child"]
            target[draw(unknown_keys)] = draw(values)
    return report


unknown_keys = st.text(min_size=1, max_size=12).filter(
    lambda key: key not in FIELDS and key not in CHILD_FIELDS
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated_reports(), json_values()))
def test_any_input_validates_or_is_refused_field_by_field(document):
    for model in (EpisodeReportedData, EpisodeUpdatedData, NotificationRecordedData):
        try:
            model.model_validate(document)
        except ValidationError as exc:
            assert exc.errors(), "a refusal names at least one field"  # noqa: PT017


@settings(max_examples=200, deadline=None)
@given(
    key=unknown_keys,
    value=json_values(),
    inside=st.sampled_from([(), ("child",), ("endangerments",), ("caseworker",)]),
)
def test_a_key_the_contract_does_not_have_is_refused_by_name(key, value, inside):
    """Never dropped without a word: the refusal names the key where it was."""
    report = make_report()
    target = report
    for name in inside:
        target = target.setdefault(name, {})
    if key in target:
        return  # a known field of that object
    target[key] = value
    with pytest.raises(ValidationError) as refused:
        EpisodeReportedData.model_validate(report)
    unknown = [
        e["loc"] for e in refused.value.errors() if e["type"] == "extra_forbidden"
    ]
    assert (*inside, key) in unknown


def test_a_misspelled_field_is_named_with_the_one_meant():
    report = make_report()
    report["child"]["photo_ulr"] = "https://example.org/p.jpg"
    report["endangerment"] = {"pregnant": True}
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED, source="county/NC-063", subject=None,
        data=report, time=datetime.now(UTC),
    )  # fmt: skip
    with pytest.raises(InvalidEventError) as refused:
        event.data_as(EpisodeReportedData, strict=True)
    reason = str(refused.value)
    assert "data.child.photo_ulr: unknown field" in reason
    assert "did you mean 'photo_url'?" in reason
    assert "data.endangerment: unknown field" in reason
    assert "did you mean 'endangerments'?" in reason


def test_consumers_read_canonical_events_tolerantly():
    """A newer producer may add a field before every consumer knows it."""
    report = make_report()
    data = {**report, "episode_id": str(uuid4()), "a_field_from_the_future": 1}
    data["child"] = {**report["child"], "shoe_size": 42}
    event = CloudEvent.new(
        type=EventType.EPISODE_REPORTED, source="intake", subject=None,
        data=data, time=datetime.now(UTC),
    )  # fmt: skip
    parsed = event.data_as(EpisodeReported)
    assert parsed.child.first_name == report["child"]["first_name"]
    with pytest.raises(InvalidEventError, match="a_field_from_the_future"):
        event.data_as(EpisodeReported, strict=True)


def test_a_county_keeps_its_own_data_in_extensions():
    report = make_report(extensions={"placement_code": "A7", "flags": [1, 2]})
    parsed = EpisodeReportedData.model_validate(report)
    assert parsed.extensions == {"placement_code": "A7", "flags": [1, 2]}
    assert parsed.model_dump(mode="json")["extensions"] == report["extensions"]


def test_a_report_without_extensions_keeps_the_digest_it_had_before_them():
    """A county retrying a report accepted before ``extensions`` existed must get
    "already have it", not a conflict: the digest leaves an absent one out."""
    report = EpisodeReportedData.model_validate(make_report())
    before = digest(report.model_dump(mode="json", exclude={"extensions"}))
    assert report_digest(report) == before
    with_them = EpisodeReportedData.model_validate(make_report(extensions={"a": 1}))
    assert report_digest(with_them) != before


@st.composite
def varied_reports(draw: st.DrawFn) -> Any:
    """Reports that mostly validate: fields left out, optional ones given, values
    validation normalises (a county code in lower case with spaces)."""
    report = make_report(county_code=draw(st.sampled_from(["NC-063", " NC-063 "])))
    required = {"first_name", "last_name", "date_of_birth", "sex"}
    for part in (report["child"], report["endangerments"]):
        for name in draw(st.sets(st.sampled_from(sorted(part.keys() - required)))):
            del part[name]
    for name in draw(st.sets(st.sampled_from(["circumstance", "endangerments"]))):
        del report[name]
    optional = {
        "determined_missing_at": st.just(report.get("agency_learned_at")),
        "last_known_location": st.text(min_size=1, max_size=40),
        "extensions": st.dictionaries(st.text(max_size=8), json_values(finite=True)),
        "prior_episodes": st.integers(0, 1000),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        report[name] = draw(optional[name])
    return report


@settings(max_examples=300, deadline=None)
@given(varied_reports())
def test_the_canonical_report_intake_builds_is_what_validation_would_give(document):
    """Intake does not validate the canonical event it builds from a validated
    report again: what it publishes is what validating it would have given."""
    try:
        report = EpisodeReportedData.model_validate(document)
    except ValidationError:
        return
    ctx = IntakeContext(
        clock=SystemClock(),
        served_counties=frozenset(),
        skew=timedelta(0),
        source="test",
        policy=POLICY,
    )
    episode_id, missing = uuid4(), completeness(report)
    built = canonical_report(
        report, episode_id=episode_id, completeness=missing, ctx=ctx
    )
    validated = EpisodeReported.model_validate(
        {
            **report.model_dump(),
            "episode_id": episode_id,
            "completeness": missing,
            "policy_digest": POLICY.digest,
        }
    )
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
