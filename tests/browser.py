"""Browser-test helpers: Playwright (sync API) driving Debian's Chromium.

A conftest makes the fixtures available with
``from tests.browser import browser, page  # noqa: F401``; tests then use
``screenshots``, ``assert_accessible`` and ``console_errors`` on the page.

Playwright's own browser download cannot reach its CDN here: never run
``playwright install``. ``scripts/browser.sh`` installs Debian's ``chromium``.

Pages under test serve a strict Content-Security-Policy (``script-src 'self'``).
axe-core is therefore not added with ``page.add_script_tag(content=...)``, which
puts an inline ``<script>`` into the page that the policy blocks (and reports as a
violation). ``page.evaluate(source)`` runs the source through the DevTools protocol
in the page's main world instead, which the policy does not govern; axe-core
itself then runs without eval or inline scripts, so it adds no violation either.
The tests keep the policy on (no ``bypass_csp``), so that a violation by the page
itself shows up in ``console_errors``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Frame,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = os.environ.get("MFC_CHROMIUM", "/usr/bin/chromium")
"""The browser: Debian's Chromium (``scripts/browser.sh`` installs it)."""

CHROMIUM_ARGS = [
    # Root cannot use Chromium's sandbox here.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # No connections of Chromium's own: this machine's network is closed, and
    # without these Chromium keeps trying (and failing) to reach Google's hosts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    # Pages may reach this machine only: every other host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
"""Launch arguments for Chromium as root on a machine without internet."""

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

SCREENSHOT_DIR = Path(
    os.environ.get("MFC_SCREENSHOT_DIR", ROOT / "tests" / "artifacts" / "screenshots")
)
"""Where ``screenshots`` writes; tests/artifacts/ is not meant to be committed."""

AXE_DIR = ROOT / "tests" / "vendor" / "axe-core"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
"""The axe-core rules run: WCAG 2.0 and 2.1, levels A and AA."""
FAILING_IMPACTS = ("critical", "serious")
"""Violations of these impacts fail ``assert_accessible``."""
TARGETS_SHOWN = 3


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _chromium_installed() -> bool:
    return shutil.which(CHROMIUM) is not None


class _Chromium:
    """The session's one Chromium, and the event loop Playwright's sync API drives.

    Between its calls, Playwright's sync API leaves its own event loop marked as the
    running loop of this thread; pytest-asyncio then refuses to run any async test
    or fixture ("Runner.run() cannot be called from a running event loop"), and a
    Playwright call made without that mark fails. So the mark is set only while a
    test holds the ``browser`` fixture, and cleared otherwise.
    """

    def __init__(self) -> None:
        self._playwright: Playwright = sync_playwright().start()
        self.loop = asyncio.get_running_loop()  # Playwright's own, marked running
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except BaseException:
            self._playwright.stop()
            raise
        asyncio._set_running_loop(None)

    def close(self) -> None:
        asyncio._set_running_loop(self.loop)
        try:
            self.browser.close()
        finally:
            self._playwright.stop()  # this clears the mark again


_chromium: _Chromium | None = None


def _session_chromium(request: pytest.FixtureRequest) -> _Chromium:
    global _chromium
    if _chromium is None:
        if not _chromium_installed():
            message = (
                f"Chromium not found at {CHROMIUM}: run `bash scripts/browser.sh` "
                "(or set MFC_CHROMIUM to a Chromium binary)"
            )
            if _ci():
                pytest.fail(f"{message}; CI is set, so a missing browser is a failure")
            pytest.skip(message)
        _chromium = _Chromium()

        def close() -> None:
            global _chromium
            if _chromium is not None:
                _chromium.close()
                _chromium = None

        request.session.addfinalizer(close)
    return _chromium


@pytest.fixture(name="browser")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """The session's Chromium as a Playwright sync-API ``Browser``.

    Chromium is launched once per session (the first test that asks for it) and
    closed when the session ends. The fixture itself is function-scoped on purpose
    (see ``_Chromium``): asyncio tests keep working between browser tests. For the
    same reason a browser test cannot also use async fixtures set up after it.
    """
    chromium = _session_chromium(request)
    asyncio._set_running_loop(chromium.loop)
    try:
        yield chromium.browser
    finally:
        asyncio._set_running_loop(None)


@pytest.fixture(name="page")
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context and page at desktop size, collecting console errors."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        fresh = context.new_page()
        console_errors(fresh)
        yield fresh
    finally:
        context.close()


def screenshots(page: Page, name: str) -> list[Path]:
    """Full-page PNGs of the current page at desktop and at phone width.

    Writes ``<name>-desktop.png`` and ``<name>-phone.png`` into SCREENSHOT_DIR and
    returns their paths; the page's viewport is restored afterwards.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"screenshot name must be a plain file name stem: {name!r}")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    try:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            path = SCREENSHOT_DIR / f"{name}-{label}.png"
            page.screenshot(path=path, full_page=True)
            paths.append(path)
    finally:
        if original is not None:
            page.set_viewport_size(original)
    return paths


@functools.cache
def _axe() -> str:
    return (AXE_DIR / "axe.min.js").read_text(encoding="utf-8")


def _inject_axe(frame: Frame) -> None:
    if frame.is_detached():
        return
    if frame.evaluate("() => typeof window.axe?.run === 'function'"):
        return
    # A plain expression, not a function: evaluate() runs it as a script would.
    frame.evaluate(_axe() + "\n;void 0")


def _target(target: Any) -> str:
    # A target is a CSS selector, or a list of them through iframes/shadow roots.
    if isinstance(target, list):
        return " >> ".join(_target(t) for t in target)
    return str(target)


def assert_accessible(page: Page, *, context: str = "") -> None:
    """Run axe-core (WCAG 2.0/2.1 A and AA) on the page as it is now.

    Raises AssertionError listing every "serious" or "critical" violation with its
    rule id, impact, help text and first target selectors. ``context`` is a label
    for the message (say "inbox, filtered, phone width").
    """
    for frame in page.frames:
        _inject_axe(frame)
    results = page.evaluate(
        "options => window.axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]},
    )
    failing = [v for v in results["violations"] if v.get("impact") in FAILING_IMPACTS]
    if not failing:
        return
    where = page.url + (f" ({context})" if context else "")
    lines = [
        f"axe-core {results['testEngine']['version']} found {len(failing)} "
        f"serious or critical accessibility violation(s) on {where}:"
    ]
    for violation in failing:
        targets = [_target(node["target"]) for node in violation["nodes"]]
        shown = ", ".join(targets[:TARGETS_SHOWN])
        if len(targets) > TARGETS_SHOWN:
            shown += f", and {len(targets) - TARGETS_SHOWN} more"
        lines.append(
            f"- {violation['id']} [{violation['impact']}] {violation['help']}: {shown}"
        )
        lines.append(f"  {violation['helpUrl']}")
    raise AssertionError("\n".join(lines))


_errors: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


def console_errors(page: Page) -> list[str]:
    """The page's console errors, CSP violations and uncaught exceptions so far.

    The first call starts collecting (the ``page`` fixture does so when it makes
    the page); it and later calls return the same list, which keeps filling. A
    CSP violation is reported by Chromium as a console error whose text names the
    "Content Security Policy" (see ``csp_violations``).
    """
    if page in _errors:
        return _errors[page]
    collected: list[str] = []
    _errors[page] = collected

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if where:
            where = f" ({where}:{message.location.get('lineNumber', 0)})"
        collected.append(f"console error: {message.text}{where}")

    def on_page_error(error: Error) -> None:
        collected.append(f"uncaught exception: {error.name}: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return collected


def csp_violations(page: Page) -> list[str]:
    """Of ``console_errors(page)``, those that are Content-Security-Policy violations."""
    return [e for e in console_errors(page) if "Content Security Policy" in e]
