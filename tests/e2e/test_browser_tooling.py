"""The browser-test helpers of tests/browser.py, on tiny pages served here under the
console's strict Content-Security-Policy."""

import asyncio
import http.server
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error, Page

from tests import browser as helpers
from tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    console_errors,
    csp_violations,
    screenshots,
)
from tests.browser import browser as _browser_fixture  # noqa: F401
from tests.browser import page as _page_fixture  # noqa: F401

pytestmark = pytest.mark.e2e

CSP = "default-src 'self'; script-src 'self'"

HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title>"
    '<link rel="stylesheet" href="/site.css"><script src="/site.js"></script>'
    "</head><body><main><h1>{title}</h1>"
)
FOOT = "</main></body></html>"

PAGES = {
    "/good": HEAD.format(title="Open reports")
    + '<p>Three children are missing.</p><form><label for="q">Search</label>'
    '<input id="q" name="q" type="search"><button type="submit">Find</button></form>'
    '<img src="/dot.svg" alt="Status: all deadlines met" width="40" height="40">'
    + FOOT,
    "/bad": HEAD.format(title="Broken")
    + '<img src="/dot.svg" width="40" height="40"><input type="text" name="q">'
    + FOOT,
    "/inline": HEAD.format(title="Inline")
    + "<script>document.title = 'inline script ran'</script>"
    + FOOT,
}
ASSETS = {
    "/site.css": ("text/css", "body{font-family:sans-serif;margin:1rem}h1{color:#123}"),
    "/site.js": ("text/javascript", "document.documentElement.dataset.js = 'on';"),
    "/dot.svg": (
        "image/svg+xml",
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        '<circle cx="5" cy="5" r="5" fill="#2a7"/></svg>',
    ),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in PAGES:
            kind, body = "text/html; charset=utf-8", PAGES[self.path]
        elif self.path in ASSETS:
            kind, body = ASSETS[self.path]
        else:
            self.send_response(204 if self.path == "/favicon.ico" else 404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_an_accessible_page_passes_without_any_console_error(
    page: Page, site: str
) -> None:
    page.goto(f"{site}/good")
    # The page's own same-origin script ran: the policy allows it.
    assert page.evaluate("document.documentElement.dataset.js") == "on"

    assert_accessible(page, context="good page")

    assert page.evaluate("axe.version") == "4.14.1"
    # Injecting and running axe-core under the policy caused no violation.
    assert console_errors(page) == []


def test_an_inaccessible_page_fails_naming_each_rule(page: Page, site: str) -> None:
    page.goto(f"{site}/bad")

    with pytest.raises(AssertionError) as failure:
        assert_accessible(page, context="bad page")

    message = str(failure.value)
    assert "image-alt [critical]" in message
    assert "label [critical]" in message
    assert f"{site}/bad (bad page)" in message
    assert "- image-alt [critical] Images must have alternative text: img" in message
    assert csp_violations(page) == []


def test_the_policy_blocks_an_inline_script_tag_so_axe_cannot_be_added_that_way(
    page: Page, site: str
) -> None:
    page.goto(f"{site}/good")

    with pytest.raises(Error, match="Content Security Policy"):
        page.add_script_tag(content="window.injected = true")

    assert page.evaluate("window.injected") is None
    assert len(csp_violations(page)) == 1


def test_screenshots_at_desktop_and_phone_width(
    page: Page, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(helpers, "SCREENSHOT_DIR", tmp_path / "shots")
    page.goto(f"{site}/good")

    paths = screenshots(page, "good")

    assert paths == [
        tmp_path / "shots/good-desktop.png",
        tmp_path / "shots/good-phone.png",
    ]
    (desktop_width, desktop_height), (phone_width, phone_height) = map(_png_size, paths)
    assert desktop_width == DESKTOP["width"]
    assert desktop_height >= DESKTOP["height"]
    assert phone_width == PHONE["width"]
    assert phone_height >= PHONE["height"]
    assert page.viewport_size == DESKTOP


def test_screenshot_names_are_plain_file_names(page: Page) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        screenshots(page, "../escape")


async def test_asyncio_tests_still_run_between_browser_tests() -> None:
    # Playwright's sync API marks its own event loop as running between its calls;
    # the fixtures hand it that mark only during browser tests.
    await asyncio.sleep(0)


def test_an_inline_script_is_reported_as_a_csp_violation(page: Page, site: str) -> None:
    page.goto(f"{site}/inline")

    assert page.title() == "Inline"  # the inline script did not run
    violations = csp_violations(page)
    assert len(violations) == 1, console_errors(page)
    assert "script-src 'self'" in violations[0]
    assert f"{site}/inline" in violations[0]
    assert console_errors(page) == violations
