"""The console as people use it, in a real browser (Debian's Chromium, driven by
Playwright) against the real stack: embedded PostgreSQL and broker, the four
services, the development OpenID Connect provider, the mail catcher and the console,
all as `mfc dev` runs them.

Every page the tests visit is checked with axe-core (no serious or critical
violation), for Content-Security-Policy violations and script errors, and saved as
screenshots at desktop and phone width in tests/artifacts/screenshots/ (docs/console.md).
"""

import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from devtools.devfront import FrontDoor, FrontDoorPorts
from devtools.devstack import LocalStack, free_port, local_stack
from tests import api
from tests.browser import assert_accessible, console_errors, screenshots
from tests.conftest import make_report

POLICY = Path(__file__).parents[1] / "fixtures" / "console_policy.toml"
AGENCY = ZoneInfo("America/New_York")
"""The console's time zone in these tests (devfront's CONSOLE_TIME_ZONE)."""


@dataclass
class People:
    """The running system, seen from the people's side."""

    stack: LocalStack
    front: FrontDoor

    @property
    def console(self) -> str:
        return self.front.console_url

    def url(self, service: str) -> str:
        return self.stack.services[service].url

    def bearer(self, *roles: str, counties: tuple[str, ...] = ("*",)) -> dict[str, str]:
        """A token as the development provider would issue it (same key, issuer)."""
        token = api.token(*roles, counties=counties, issuer=self.front.issuer)
        return {"Authorization": f"Bearer {token}"}

    def report(self, county: str = "NC-063", **overrides: Any) -> tuple[str, dict]:
        # Learned a minute ago: the law-enforcement duty (30 min) counts down.
        learned = datetime.now(UTC) - timedelta(minutes=1)
        report = make_report(county_code=county, **overrides)
        report["agency_learned_at"] = learned.isoformat()
        answer = httpx.post(
            f"{self.url('intake')}/v1/episodes",
            json=report,
            headers=self.bearer("county_system", counties=(county,)),
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"], report

    def update(self, episode_id: str, **data: Any) -> None:
        """New information from the county's system (``mfc.episode.updated``)."""
        answer = httpx.post(
            f"{self.url('intake')}/v1/episodes/{episode_id}/updates",
            json={**data, "updated_by": "cw-1"},
            headers=self.bearer("county_system", counties=("NC-063",)),
            timeout=10,
        )
        assert answer.status_code in (200, 201), answer.text

    def get(self, service: str, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.url(service)}{path}",
            params=params,
            headers=self.bearer("admin", "auditor_pii"),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[People]:
    state = tmp_path_factory.mktemp("console-stack")
    ports = FrontDoorPorts(
        console=free_port(), idp=free_port(), smtp=free_port(), mail=free_port()
    )
    front = FrontDoor(state_dir=state, ports=ports, private_key_pem=api.PRIVATE_KEY)
    env = front.service_env(os.environ)
    env.update(
        {
            "INTAKE_COUNTIES": "NC-063,NC-183",
            "NOTIFIER_POLICY_PATH": str(POLICY),
            "FOLLOWUP_POLICY_PATH": str(POLICY),
            "INTAKE_POLICY_PATH": str(POLICY),
            "NOTIFIER_TIMER_POLL_INTERVAL": "200ms",
            "FOLLOWUP_TIMER_POLL_INTERVAL": "200ms",
            "NOTIFIER_DELIVERY_INITIAL_BACKOFF": "200ms",
            "AUDIT_CHECKPOINT_INTERVAL": "1s",
        }
    )
    front.start()
    try:
        with local_stack(state, env, infra_env={}) as stack:
            front.start_console(stack.services, env)
            front.wait_ready(timeout=60)
            yield People(stack, front)
    finally:
        front.stop()
        log = state / "logs" / "console.log"
        if log.exists():
            (state / "console.log.keep").write_text(log.read_text())


def look(page: Page, name: str, *, status: int | tuple[int, ...] = 200) -> None:
    """A page is done when it has been looked at: axe, no script or CSP error,
    screenshots at desktop and phone width. A page answered with an error
    ``status`` on purpose is logged as a failed load by the browser: only that."""
    page.wait_for_load_state("networkidle")
    assert_accessible(page, context=name)
    screenshots(page, name)
    statuses = status if isinstance(status, tuple) else (status,)
    expected = [f"status of {s}" for s in statuses if s != 200]
    errors = [e for e in console_errors(page) if not any(x in e for x in expected)]
    assert errors == [], name


def sign_in(page: Page, people: People, who: str, *, start: str = "/") -> None:
    page.goto(people.console + start)
    if start == "/":
        page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.url.startswith(people.front.issuer), page.url
    page.locator("button", has_text=who).first.click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").first.click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()


def eventually(check: Any, within: float = 30, every: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(every)


def obligation(people: People, episode_id: str, kind: str) -> dict[str, Any]:
    found = people.get("notifier", "/v1/obligations", episode_id=episode_id)
    chosen = [o for o in found if o["kind"] == kind]
    assert chosen, f"no {kind} for {episode_id} yet"
    return chosen[0]


def alerts_of(people: People, episode_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = people.get(
        "notifier", "/v1/alerts", episode_id=episode_id
    )
    return result


def unique_name() -> str:
    return "Q" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(9))


def test_welcome_and_sign_in_pages_work_for_everyone(people, page):
    page.goto(people.console + "/")
    look(page, "welcome")
    page.get_by_role("link", name="Sign in").click()
    assert page.url.startswith(people.front.issuer)
    look(page, "sign-in-provider")


def test_on_call_golden_path(people, page):
    """Inbox with a live countdown, the alert email's link through sign-in, one
    click to acknowledge (and the breach paging stops), a notice recorded from the
    episode page, the call sheet printed and downloaded."""
    last = unique_name()
    episode_id, sent = people.report(child={"last_name": last, "photo_url": None})
    case = f"case {sent['case_id']}"

    # The breach of the NCMEC duty pages the top of the chain every 2 s by email.
    ncmec = eventually(lambda: _breached(people, episode_id))
    link = eventually(lambda: _alert_link(people, episode_id))
    assert link.startswith(f"{people.console}/alerts/")

    sign_in(page, people, "Robin Oncall")
    expect(page).to_have_url(f"{people.console}/inbox")
    ours = page.locator(".card").filter(has_text=case)
    card = ours.filter(has_text="Report to NCMEC")
    expect(card).to_have_class(re.compile("is-overdue"))
    initials = f"J.{last[0]}."
    expect(card).to_contain_text(f"Child {initials}")
    expect(card).not_to_contain_text(last)
    countdown = (
        page.locator(".card", has_text="Report to law enforcement")
        .locator("time[data-countdown]")
        .first
    )
    first = countdown.inner_text()
    assert first.startswith("due in"), first
    expect(countdown).not_to_have_text(first, timeout=5000)  # it counts down
    look(page, "inbox")

    # The email's link, after signing out: sign in, and land on that alert.
    sign_out(page)
    look(page, "signed-out")
    page.goto(link)
    assert page.url.startswith(people.front.issuer), "sends to sign-in first"
    page.locator("button", has_text="Robin Oncall").first.click()
    expect(page).to_have_url(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Report to NCMEC")
    look(page, "alert")

    breaches = eventually(lambda: _breach_count(people, ncmec, at_least=2))
    page.get_by_role("button", name=re.compile("acknowledge", re.I)).click()
    expect(page.get_by_role("status")).to_contain_text("Acknowledged by you")
    look(page, "alert-acknowledged")
    alert = people.get("notifier", f"/v1/alerts/{link.rsplit('/', 1)[1]}")
    assert [a["acked_by"] for a in alert["acks"]] == ["oncall.nc063"]
    # Paging stops: no breach alert for the snooze period (it repeated every 2 s).
    after_ack = _breach_count(people, ncmec)
    assert after_ack <= breaches + 1  # one may have been on its way
    time.sleep(5)
    assert _breach_count(people, ncmec) == after_ack

    # Record the NCMEC report from the episode page: it closes the duty.
    page.get_by_role("link", name="Record the notice given").click()
    breached = page.locator(".card").filter(has_text="Report to NCMEC")
    must_act = breached.locator("dt", has_text="Must act now").locator("+ dd")
    expect(must_act).to_have_text("On-call A")  # whoever the schedule has on call
    expect(page.locator("ol.timeline")).to_contain_text(
        "Alert acknowledged: by oncall.nc063"
    )
    look(page, "episode")
    page.get_by_label("Who was told").select_option("ncmec")
    page.get_by_label("How").select_option("online")
    page.get_by_label(re.compile("Report or case number")).fill("1234567")
    page.get_by_role("button", name="Record the notice").click()
    expect(page.get_by_role("status").first).to_contain_text("Notice recorded")
    # Without the photo this policy's NCMEC report must include, the notice leaves
    # the duty open, and the page says what is still needed.
    waiting = eventually(
        lambda: _waiting(obligation(people, episode_id, "ncmec_report"))
    )
    assert "without a photo" in waiting["waiting_reason"]
    page.reload()
    expect(page.locator(".card").filter(has_text="Report to NCMEC")).to_contain_text(
        "Still needed"
    )
    look(page, "episode-notice-incomplete")

    # The call sheet: printable, and as a PDF.
    page.goto(f"{people.console}/episodes/{episode_id}/call-sheet")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Missing child call sheet"
    )
    expect(page.locator(".notice.warning")).to_contain_text("Photo")
    look(page, "call-sheet")
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    page.screenshot(
        path=str(screenshots_dir() / "call-sheet-print.png"), full_page=True
    )
    page.emulate_media(media="screen")
    pdf = page.request.get(f"{people.console}/episodes/{episode_id}/call-sheet.pdf")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # The county's system sends the photo; the notice given again (by phone, with
    # the photo) closes the duty.
    people.update(episode_id, child={"photo_url": "https://photos.example.org/p/2.jpg"})
    page.goto(f"{people.console}/episodes/{episode_id}")
    page.get_by_label("Who was told").select_option("ncmec")
    page.get_by_label("How").select_option("phone")
    page.get_by_label(re.compile("Report or case number")).fill("1234567")
    page.get_by_role("button", name="Record the notice").click()
    expect(page.get_by_role("status").first).to_contain_text("Notice recorded")
    done = eventually(
        lambda: _status(obligation(people, episode_id, "ncmec_report"), "satisfied")
    )
    assert done["reference_number"] == "1234567"
    notices = [
        t
        for t in people.get("intake", f"/v1/episodes/{episode_id}")["timeline"]
        if t["type"] == "mfc.notification.recorded"
    ]
    assert [n["data"]["notified_by"] for n in notices] == ["oncall.nc063"] * 2
    page.goto(f"{people.console}/inbox")
    expect(
        page.locator(".card", has_text="Report to NCMEC").filter(has_text=initials)
    ).to_have_count(0)

    page.goto(f"{people.console}/me")
    expect(page.locator("main")).to_contain_text("oncall.nc063")
    look(page, "me")


def _breached(people: People, episode_id: str) -> dict[str, Any]:
    found = obligation(people, episode_id, "ncmec_report")
    assert found["breached"], found
    return found


def _alert_link(people: People, episode_id: str) -> str:
    """The link in the email of the NCMEC duty's breach alert."""
    messages = httpx.get(f"{people.front.mail.url}/api/messages", timeout=5).json()
    for message in messages:
        if episode_id in message["text"] and "BREACHED" in message["subject"]:
            found = re.search(r"(http://\S+/alerts/\S+)", message["text"])
            assert found, message["text"]
            return found.group(1)
    raise AssertionError(f"no breach email for {episode_id} yet")


def _breach_count(people: People, duty: dict[str, Any], at_least: int = 0) -> int:
    count = sum(
        1
        for a in alerts_of(people, duty["episode_id"])
        if a["obligation_id"] == duty["id"] and a["step_key"].startswith("breach")
    )
    assert count >= at_least, count
    return count


def _waiting(found: dict[str, Any]) -> dict[str, Any]:
    assert found["status"] == "open", found
    assert found["waiting_reason"], found
    return found


def _status(found: dict[str, Any], status: str) -> dict[str, Any]:
    assert found["status"] == status, found
    return found


def screenshots_dir() -> Path:
    from tests.browser import SCREENSHOT_DIR

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


def test_auditor_golden_path(people, page):
    """Filter the dashboard (the filters stay in the URL), download exactly the
    audit service's CSV, open a trail with every proof verified, verify the whole
    trail; no personal field for `auditor`, and they are there for `auditor_pii`."""
    last = unique_name()
    episode_id, _ = people.report(child={"last_name": last})
    eventually(lambda: _breached(people, episode_id))

    sign_in(page, people, "Avery Auditor")
    expect(page).to_have_url(f"{people.console}/audit")
    page.get_by_label(re.compile("County")).fill("NC-063")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/audit\?county=NC-063"))
    expect(page.locator("table")).to_contain_text("ncmec report")
    look(page, "audit-dashboard")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download these rows as CSV")).click()
    shown = Path(download.value.path()).read_bytes()
    direct = httpx.get(
        f"{people.url('audit')}/v1/audit/compliance",
        params={"county": "NC-063", "format": "csv"},
        headers=people.bearer("auditor"),
        timeout=10,
    ).content
    assert shown == direct
    assert episode_id.encode() in shown

    def all_verified() -> None:
        page.goto(f"{people.console}/audit/episodes/{episode_id}")
        expect(page.get_by_role("status").first).to_contain_text(
            "Every entry verified", timeout=1000
        )

    eventually(lambda: _playwright_assert(all_verified))
    entries = page.locator("li.entry")
    assert entries.count() >= 3
    expect(page.locator(".unverified")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(last)
    look(page, "audit-trail")

    page.goto(f"{people.console}/audit/checkpoints")
    page.get_by_role("button", name="Verify the whole trail now").click()
    expect(page.get_by_role("status")).to_contain_text("The whole trail verifies")
    look(page, "audit-checkpoints")

    sign_out(page)
    sign_in(page, people, "Parker Reviewer")
    page.goto(f"{people.console}/audit/episodes/{episode_id}")
    page.locator("summary").first.click()
    expect(page.locator("main")).to_contain_text(last)


def _playwright_assert(check: Any) -> None:
    from playwright.sync_api import Error

    try:
        check()
    except Error as exc:  # a timed-out expectation
        raise AssertionError(str(exc)) from None


def test_another_countys_alert_or_episode_is_not_found(people, page):
    other_id, _ = people.report(county="NC-183")
    alert_id = eventually(lambda: _first_alert(people, other_id))
    sign_in(page, people, "Robin Oncall")
    for path in (f"/episodes/{other_id}", f"/alerts/{alert_id}"):
        answer = page.goto(people.console + path)
        assert answer is not None
        assert answer.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    look(page, "not-found", status=404)
    # An auditor page for on-call staff: a clear refusal, not a trace.
    answer = page.goto(f"{people.console}/audit")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This page is not part of your role"
    )
    look(page, "not-your-role", status=(403, 404))


def _first_alert(people: People, episode_id: str) -> str:
    found = alerts_of(people, episode_id)
    assert found
    return str(found[0]["id"])


def test_a_form_without_its_csrf_token_is_refused(people, page):
    """Every form of the console: acknowledge, record a notice, mark a task done,
    sign out. Without the session's token (or with another) nothing happens."""
    episode_id, _ = people.report(child={"photo_url": None})
    alert_id = eventually(lambda: _first_alert(people, episode_id))
    prompt_id = eventually(lambda: _first_prompt(people, episode_id))
    sign_in(page, people, "Robin Oncall")
    notice = {
        "recipient": "ncmec",
        "method": "online",
        "notified_at": "2026-12-01T03:10",
    }
    forms = {
        f"/alerts/{alert_id}/ack": {"note": "forged"},
        f"/episodes/{episode_id}/notices": notice,
        f"/episodes/{episode_id}/tasks/{prompt_id}/done": {},
        "/signout": {},
    }
    for path, fields in forms.items():
        for token in ({}, {"csrf_token": "not-the-one"}):
            forged = page.request.post(people.console + path, form={**fields, **token})
            assert forged.status == 403, path
            assert "This form could not be sent" in forged.text()
    assert people.get("notifier", f"/v1/alerts/{alert_id}")["acks"] == []
    timeline = people.get("intake", f"/v1/episodes/{episode_id}")["timeline"]
    assert [t["type"] for t in timeline] == ["mfc.episode.reported"]
    prompts = people.get("followup", "/v1/prompts", episode_id=episode_id)
    assert {p["status"] for p in prompts} == {"open"}
    page.goto(f"{people.console}/me")  # still signed in
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")


def _first_prompt(people: People, episode_id: str) -> str:
    found = people.get("followup", "/v1/prompts", episode_id=episode_id)
    assert found
    return str(found[0]["id"])


def test_pages_send_strict_security_headers(people, page):
    answer = page.goto(people.console + "/")
    assert answer is not None
    headers = answer.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    sign_in(page, people, "Robin Oncall")
    cookie = next(c for c in page.context.cookies() if c["name"] == "mfc_console")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"


def test_the_consoles_logs_hold_no_child_name(people, page):
    """Through the pages that show the name, a refused form and a failing call."""
    last = unique_name()
    episode_id, _ = people.report(child={"last_name": last})
    sign_in(page, people, "Robin Oncall")
    page.goto(f"{people.console}/episodes/{episode_id}/call-sheet")
    expect(page.locator("main")).to_contain_text(last)  # the page may show it
    page.request.get(f"{people.console}/episodes/{episode_id}/call-sheet.pdf")
    page.goto(f"{people.console}/episodes/{episode_id}")
    page.get_by_label("Who was told").select_option("ncmec")
    page.get_by_label("How").select_option("online")
    page.get_by_label(re.compile("Report or case number")).fill(last * 40)
    page.get_by_role("button", name="Record the notice").click()
    expect(page.get_by_role("alert")).to_contain_text("The notice was not recorded")
    page.goto(f"{people.console}/alerts/not-an-id-{last}")
    log = people.front.console.log_path if people.front.console else None
    assert log is not None
    assert last not in log.read_text()


def test_caseworker_records_the_law_enforcement_report_in_their_own_name(people, page):
    """And marks a task done, also in their own name."""
    episode_id, sent = people.report(child={"photo_url": None})
    sign_in(page, people, "Casey Fieldworker")
    expect(page).to_have_url(f"{people.console}/inbox")
    ours = page.locator(".card").filter(has_text=f"case {sent['case_id']}")
    ours.filter(has_text="Report to law enforcement").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Report to law enforcement"
    )
    page.get_by_role("link", name="Record the notice given").click()
    page.get_by_label("Who was told").select_option("law_enforcement")
    page.get_by_label("How").select_option("phone")
    page.get_by_label(re.compile("Report or case number")).fill("24-118833")
    page.get_by_label(re.compile("Agency")).fill("Durham Police Department")
    page.get_by_role("button", name="Record the notice").click()
    expect(page.get_by_role("status").first).to_contain_text("Notice recorded")
    done = eventually(
        lambda: _status(
            obligation(people, episode_id, "law_enforcement_report"), "satisfied"
        )
    )
    assert done["reference_number"] == "24-118833"
    page.reload()
    expect(page.locator("ol.timeline")).to_contain_text("by caseworker.nc063")

    def task_listed() -> None:
        page.reload()
        expect(page.locator("ul.tasks")).to_contain_text(
            "Provide the missing report items", timeout=1000
        )

    eventually(lambda: _playwright_assert(task_listed))
    page.get_by_role(
        "button", name=re.compile("Mark done.*Provide the missing report items")
    ).click()
    expect(page.get_by_role("status").first).to_contain_text("Task marked done")
    expect(page.locator("ul.tasks")).to_contain_text("by caseworker.nc063")
    look(page, "episode-task-done")


def test_a_notice_form_with_a_mistake_says_which_field(people, page):
    episode_id, _ = people.report()
    sign_in(page, people, "Robin Oncall")
    page.goto(f"{people.console}/episodes/{episode_id}")
    page.get_by_label("Who was told").select_option("ncmec")
    page.get_by_label("How").select_option("online")
    page.get_by_label(re.compile("Report or case number")).fill("x" * 300)
    page.get_by_role("button", name="Record the notice").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The notice was not recorded")
    expect(alert).to_contain_text("reference number")
    expect(page.get_by_label(re.compile("Report or case number"))).to_have_value(
        "x" * 300
    )
    look(page, "episode-form-error", status=422)


def test_a_notice_time_typed_in_local_time_is_recorded_as_that_moment(people, browser):
    """A caseworker in California types the time on her own clock; the browser
    works out the moment (UTC) for that date. The time is a few minutes ago: a
    notice must fall after the child was last seen and not in the future."""
    episode_id, _ = people.report()
    told = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    typed = told.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y-%m-%dT%H:%M")
    context = browser.new_context(
        timezone_id="America/Los_Angeles", viewport={"width": 1280, "height": 800}
    )
    try:
        page = context.new_page()
        sign_in(page, people, "Robin Oncall")
        page.goto(f"{people.console}/episodes/{episode_id}")
        expect(page.locator("[data-tz-label]")).to_have_text("(your local time)")
        page.get_by_label("Who was told").select_option("law_enforcement")
        page.get_by_label("How").select_option("phone")
        page.get_by_label(re.compile("^When")).fill(typed)
        page.get_by_role("button", name="Record the notice").click()
        expect(page.get_by_role("status").first).to_contain_text("Notice recorded")
    finally:
        context.close()
    notices = [
        t["data"]
        for t in people.get("intake", f"/v1/episodes/{episode_id}")["timeline"]
        if t["type"] == "mfc.notification.recorded"
    ]
    recorded = [datetime.fromisoformat(n["notified_at"]) for n in notices]
    assert recorded == [told]


def test_the_alert_can_be_acknowledged_with_the_keyboard_alone(people, page):
    """Skip link first, then Tab to the button and Enter: no mouse needed."""
    episode_id, _ = people.report()
    alert_id = eventually(lambda: _first_alert(people, episode_id))
    sign_in(page, people, "Robin Oncall")
    page.goto(f"{people.console}/alerts/{alert_id}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")  # to the main content
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        if "acknowledge" in focused:
            break
    else:
        raise AssertionError("the acknowledge button is not reachable by Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Acknowledged by you")
    acks = people.get("notifier", f"/v1/alerts/{alert_id}")["acks"]
    assert [a["acked_by"] for a in acks] == ["oncall.nc063"]


def test_an_admin_puts_someone_else_on_call_and_ends_it(people, page):
    """A sick day at night: the admin adds a cover in the console, the deadline
    service pages by it at once, and ending it hands back to the rota."""
    sign_in(page, people, "Alex Administrator", start="/on-call")
    now_on_call = page.locator("#managers .on-call-now")
    expect(now_on_call).to_contain_text("On-call A")
    look(page, "on-call")

    form = page.locator("#managers form.stack")
    form.get_by_label("Who covers").select_option(label="On-call B")
    start = datetime.now(AGENCY)  # the form reads times in the agency's zone
    form.get_by_label("Until").fill(
        (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    )
    form.get_by_label("Why").fill("sick day")
    form.get_by_role("button", name="Add the cover").click()
    expect(page.get_by_role("status")).to_contain_text("Cover added")
    expect(now_on_call).to_contain_text("On-call B")
    expect(page.locator("#managers .covers")).to_contain_text("sick day")
    look(page, "on-call-covered")
    schedule = people.get("notifier", "/v1/schedules/managers")
    assert schedule["on_call_now"]["id"] == "oncall-b"
    [cover] = schedule["overrides"]
    assert cover["created_by"] == "admin"

    # Two covers at once are refused in plain words, next to the form.
    form = page.locator("#managers form.stack")
    form.get_by_label("Who covers").select_option(label="On-call A")
    form.get_by_label("Until").fill(
        (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    form.get_by_label("Why").fill("swap")
    form.get_by_role("button", name="Add the cover").click()
    expect(page.get_by_role("alert")).to_contain_text("overlaps another cover")
    expect(page.get_by_role("alert").get_by_role("link")).to_have_text("From")

    # A cover that ends before it starts is refused, saying what to fix.
    form = page.locator("#managers form.stack")
    form.get_by_label("Who covers").select_option(label="On-call B")
    form.get_by_label("Until").fill(
        (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    form.get_by_label("Why").fill("swap")
    form.get_by_role("button", name="Add the cover").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "The cover must end after it starts"
    )
    look(page, "on-call-refused", status=422)

    page.get_by_role("button", name="End this cover now").click()
    expect(page.get_by_role("status")).to_contain_text("Cover ended")
    expect(now_on_call).to_contain_text("On-call A")
    assert people.get("notifier", "/v1/schedules/managers")["overrides"] == []


def test_on_call_staff_see_who_is_on_call_but_do_not_change_it(people, page):
    sign_in(page, people, "Robin Oncall", start="/on-call")
    expect(page.get_by_role("heading", name="Who is on call")).to_be_visible()
    expect(page.locator("#managers .on-call-now")).to_contain_text("On-call")
    expect(page.get_by_role("button", name="Add the cover")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the calendar").click()
    body = Path(download.value.path()).read_text()
    assert body.startswith("BEGIN:VCALENDAR")
    assert "On call (managers)" in body
