from datetime import UTC, datetime, timedelta

from rules import on_call, resolve
from shared.alerts import Recipient
from shared.policy import Schedule, default_policy_path, load_policy


def test_on_call_rotates_weekly_and_overrides_win():
    schedule = Schedule.model_validate(
        {
            "members": ["a", "b"],
            "start": "2026-01-05T14:00:00Z",
            "overrides": [
                {
                    "start": "2026-01-14T00:00:00Z",
                    "end": "2026-01-15T00:00:00Z",
                    "contact": "c",
                }
            ],
        }
    )
    start = datetime(2026, 1, 5, 14, tzinfo=UTC)
    assert on_call(schedule, start) == "a"
    assert on_call(schedule, start + timedelta(days=7)) == "b"
    assert on_call(schedule, start + timedelta(days=14)) == "a"
    assert on_call(schedule, datetime(2026, 1, 14, 12, tzinfo=UTC)) == "c"


def test_resolve_names_staff_contacts_and_whoever_is_on_call_then():
    policy = load_policy(default_policy_path())
    staff = {"caseworker": {"id": "cw-1", "name": "Ann"}}
    targets = ["caseworker", "contact:oncall-b", "schedule:oncall-managers"]
    second_week = datetime(2026, 1, 13, tzinfo=UTC)
    assert resolve(policy, targets, staff, second_week) == [
        Recipient("cw-1", "Ann", None),
        Recipient("oncall-b", "On-call manager B", "oncall-b@agency.example"),
        Recipient("oncall-b", "On-call manager B", "oncall-b@agency.example"),
    ]
    first_week = second_week - timedelta(days=7)
    [manager] = resolve(policy, ["schedule:oncall-managers"], staff, first_week)
    assert manager.id == "oncall-a"
