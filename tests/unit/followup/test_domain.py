"""Followup's pure decisions: which series an event starts and ends, the prompt an
occurrence issues, completion, and the wording of events and alerts."""

from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from followup.domain import messages
from followup.domain.model import (
    Episode,
    EpisodeStatus,
    Prompt,
    PromptNotOpenError,
    PromptStatus,
    Series,
)
from followup.domain.occurrences import (
    AlertReason,
    alerted,
    complete,
    issue,
    next_occurrence,
    on_time,
    went_overdue,
)
from followup.domain.series import (
    Start,
    new_series,
    on_closed,
    on_located,
    on_report,
    on_update,
)
from shared.alerts import Recipient
from shared.events import EpisodeReported, Staff
from shared.policy import PromptStart
from shared.published import PromptEvent, outgoing
from tests.unit.followup.builders import COUNTY, ITEM, POLICY, START, URL, reported

DAY = timedelta(days=1)
EPISODE_ID = UUID("00000000-0000-4000-8000-000000000001")
PROMPT_ID = UUID("00000000-0000-4000-8000-000000000002")
ALERT_ID = UUID("00000000-0000-4000-8000-000000000003")


def episode(*missing: str, status: EpisodeStatus = EpisodeStatus.MISSING) -> Episode:
    return Episode(
        episode_id=EPISODE_ID,
        county_code=COUNTY,
        child_initials="J.T.",
        caseworker=Staff(id="cw-1", name="Casey Worker", email="cw@example.org"),
        supervisor=Staff(id="sv-1", name="Sam Supervisor", email="sv@example.org"),
        completeness=missing,
        status=status,
    )


def series(rule_id: str, kind: PromptStart = PromptStart.REPORTED) -> Series:
    [rule] = [r for r in POLICY.prompts_for(COUNTY) if r.id == rule_id]
    [made] = new_series(
        [rule],
        [Start.once(kind)],
        episode_id=EPISODE_ID,
        policy_digest=POLICY.digest,
        now=START,
    )
    return made


def prompt(**overrides: Any) -> Prompt:
    made = issue(
        series("document_search_efforts"),
        episode(),
        2,
        at=START + 3 * DAY,
        prompt_id=PROMPT_ID,
    )
    return replace(made, **overrides)


# --------------------------------------------------------------------------- #
# Series
# --------------------------------------------------------------------------- #


def test_a_report_missing_items_starts_the_search_and_the_incomplete_series():
    change = on_report(reported(EPISODE_ID, ITEM).data_as(EpisodeReported))

    assert change.starts == (
        Start(PromptStart.REPORTED, "reported"),
        Start(PromptStart.INCOMPLETE, "incomplete"),
    )
    assert change.episode.child_initials == "J.T.", "initials, never the name"
    assert change.episode.completeness == (ITEM,)


def test_a_complete_report_starts_only_the_search():
    change = on_report(reported(EPISODE_ID).data_as(EpisodeReported))

    assert change.starts == (Start(PromptStart.REPORTED, "reported"),)


def test_an_update_supplying_every_item_ends_the_incomplete_series():
    change = on_update(episode(ITEM), [], event_id="u-1", incomplete_running=True)

    assert change.ends == (PromptStart.INCOMPLETE,)
    assert change.reason == "the report items were provided"
    assert change.starts == (Start(PromptStart.NEW_INFORMATION, "u-1"),)
    assert change.episode.completeness == ()


def test_an_item_missing_again_restarts_the_incomplete_series_keyed_by_the_update():
    change = on_update(episode(), [ITEM], event_id="u-2", incomplete_running=False)

    assert change.ends == ()
    assert change.starts == (
        Start(PromptStart.INCOMPLETE, "u-2"),
        Start(PromptStart.NEW_INFORMATION, "u-2"),
    )


def test_an_item_still_missing_while_prompted_for_starts_no_second_series():
    change = on_update(episode(ITEM), [ITEM], event_id="u-3", incomplete_running=True)

    assert change.starts == (Start(PromptStart.NEW_INFORMATION, "u-3"),)


def test_an_update_after_the_return_starts_nothing():
    located = episode(status=EpisodeStatus.LOCATED)

    change = on_update(located, [ITEM], event_id="u-4", incomplete_running=False)

    assert change.starts == ()


def test_located_ends_the_search_and_starts_the_return_series():
    change = on_located(episode(ITEM))

    assert change.episode.status is EpisodeStatus.LOCATED
    assert set(change.ends) == {PromptStart.REPORTED, PromptStart.INCOMPLETE}
    assert change.starts == (Start(PromptStart.LOCATED, "located"),)
    assert change.reason == "the child was located"


def test_closing_ends_every_kind_of_series():
    change = on_closed(episode(), "home, debriefed")

    assert change.episode.status is EpisodeStatus.CLOSED
    assert set(change.ends) == set(PromptStart)
    assert change.starts == ()
    assert change.reason == "episode closed: home, debriefed"


def test_each_start_starts_every_rule_of_its_kind_in_force():
    made = new_series(
        POLICY.prompts_for(COUNTY),
        [Start(PromptStart.LOCATED, "located")],
        episode_id=EPISODE_ID,
        policy_digest=POLICY.digest,
        now=START,
    )

    assert {s.rule.id for s in made} == {"trafficking_screening", "return_debrief"}
    assert {(s.trigger_id, s.started_at) for s in made} == {("located", START)}


# --------------------------------------------------------------------------- #
# Occurrences
# --------------------------------------------------------------------------- #


def test_an_occurrence_is_due_its_rules_due_time_after_it_is_issued():
    issued = prompt()

    assert (issued.occurrence, issued.issued_at) == (2, START + 3 * DAY)
    assert issued.due_at == START + 4 * DAY
    rule = series("document_search_efforts").rule
    assert (issued.rule_id, issued.title, issued.assignee) == (
        rule.id,
        rule.title,
        "caseworker",
    )
    assert issued.missing_items is None


def test_an_incomplete_series_prompt_names_the_items_missing_now():
    incomplete = series("provide_missing_report_items", PromptStart.INCOMPLETE)

    issued = issue(incomplete, episode(ITEM), 0, at=START, prompt_id=PROMPT_ID)

    assert issued.missing_items == (ITEM,)


def test_the_next_occurrence_follows_the_cadence_and_stops_after_stop_after():
    search = series("document_search_efforts")
    weekly_for_two = search.rule.model_copy(update={"stop_after": 2 * DAY})
    stopping = replace(search, rule=weekly_for_two)

    assert next_occurrence(search, 0) == START + 2 * DAY
    assert next_occurrence(stopping, 0) == START + 2 * DAY
    assert next_occurrence(stopping, 1) is None


def test_a_prompt_alerts_its_assignee_and_overdue_escalates():
    review = series("supervisor_review").rule

    assert alerted(review, AlertReason.PROMPT) == ["supervisor"]
    assert alerted(review, AlertReason.OVERDUE) == ["schedule:oncall-managers"]


def test_completion_records_who_and_when_and_whether_on_time():
    done = complete(prompt(), by="cw-1", note="called", now=START + 3 * DAY)

    assert done.status is PromptStatus.COMPLETED
    assert (done.completed_by, done.note) == ("cw-1", "called")
    assert on_time(done)
    assert not on_time(complete(prompt(), by="cw-1", note=None, now=START + 5 * DAY))


@pytest.mark.parametrize("status", [PromptStatus.COMPLETED, PromptStatus.ENDED])
def test_a_prompt_not_open_cannot_be_completed(status):
    with pytest.raises(PromptNotOpenError, match=f"the prompt is {status.value}"):
        complete(prompt(status=status), by="cw-1", note=None, now=START)


def test_going_overdue_records_when():
    assert went_overdue(prompt(), START + 4 * DAY).overdue_at == START + 4 * DAY


# --------------------------------------------------------------------------- #
# Wording
# --------------------------------------------------------------------------- #


PEOPLE = [Recipient("sv-1", "Sam Supervisor", "sv@example.org")]


def test_an_overdue_alert_is_worded_as_before():
    alert = messages.prompt_alert(
        prompt(missing_items=(ITEM, "child.photo_url")),
        episode(),
        PEOPLE,
        reason=AlertReason.OVERDUE,
        alert_id=ALERT_ID,
        episode_url_template=URL,
        scheduled_at=START + 4 * DAY,
    )

    title = prompt().title
    url = f"https://console.example.org/episodes/{EPISODE_ID}"
    assert alert.subject == f"[OVERDUE] {title}: child J.T., due 2026-11-06 18:00 UTC"
    assert alert.text == (
        f"{title}\nChild: J.T.  Episode: {EPISODE_ID}\n"
        f"Still missing: {ITEM}, child.photo_url\n"
        f"Due 2026-11-06 18:00 UTC\nEpisode: {url}\n"
        "Mark it done on the episode page.\n"
    )
    assert alert.webhook_body() == {
        "alert_id": str(ALERT_ID),
        "episode_id": str(EPISODE_ID),
        "child": "J.T.",
        "prompt": {
            "id": str(PROMPT_ID),
            "kind": "document_search_efforts",
            "title": title,
            "occurrence": 2,
            "due_at": "2026-11-06T18:00:00+00:00",
            "missing_items": [ITEM, "child.photo_url"],
        },
        "reason": "overdue",
        "recipients": [{"id": "sv-1", "name": "Sam Supervisor"}],
        "episode_url": url,
        "subject": alert.subject,
        "text": alert.text,
    }
    assert [r.email for r in alert.recipients] == ["sv@example.org"]
    assert alert.scheduled_at == START + 4 * DAY


def test_a_prompt_alert_without_missing_items_says_nothing_of_them():
    alert = messages.prompt_alert(
        prompt(),
        episode(),
        PEOPLE,
        reason=AlertReason.PROMPT,
        alert_id=ALERT_ID,
        episode_url_template=URL,
        scheduled_at=START,
    )

    assert alert.subject.startswith("[PROMPT] ")
    assert "Still missing" not in alert.text
    assert alert.details["prompt"]["missing_items"] is None
    assert alert.reason == "prompt"


def test_prompt_events_carry_missing_items_only_when_the_prompt_names_them():
    def data(p: Prompt) -> dict[str, object]:
        event = outgoing(
            PromptEvent.ISSUED,
            messages.issued(p),
            source="test",
            subject=EPISODE_ID,
            time=START,
        )
        return event.event.data

    assert "missing_items" not in data(prompt())
    assert data(prompt(missing_items=(ITEM,)))["missing_items"] == [ITEM]
    assert data(prompt())["prompt_id"] == str(PROMPT_ID)
    assert data(prompt())["kind"] == "document_search_efforts"


def test_completed_ended_and_overdue_events_say_how():
    done = complete(prompt(), by="event:e-1", note=None, now=START + 5 * DAY)

    assert messages.completed(done).on_time is False
    assert messages.completed(done).completed_by == "event:e-1"
    assert messages.ended(prompt(), reason="episode closed: x").reason == (
        "episode closed: x"
    )
    overdue = messages.overdue(prompt(), escalated_to="supervisor")
    assert overdue.escalated_to == "supervisor"
