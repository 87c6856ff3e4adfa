"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against pytest-django's live_server.

No browser is ever downloaded: Playwright only drives the system's chromium.
Without it the browser tests skip, with a message saying how to install it;
with REQUIRE_SERVICES=1 they fail instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    message = f"{reason} (install it with `make browser-deps`: apt-get install chromium fonts-wqy-microhei)"
    if REQUIRE_SERVICES:
        pytest.fail(f"browser tests need chromium: {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module.

    Playwright's sync API keeps an event loop in this thread, which makes Django
    refuse ORM calls from it; the tests' own setup queries are safe (nothing
    else runs on that loop), so the guard is lifted for the module only.
    """
    if not Path(CHROMIUM).exists():
        _unavailable(f"no chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
    except Exception as exc:  # a chromium that cannot start is a missing dependency too
        manager.stop()
        _unavailable(f"chromium at {CHROMIUM} did not start: {exc}")
    yield chromium
    chromium.close()
    manager.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) and page, 1400x900, with the live server's URL."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                  base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot to artifacts/screenshots/NAME.png for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, member) -> None:
    """Log in through the admin's login form with password and the current one-time password."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", member.username)
    page.fill("#id_password", member.password)
    page.fill("#id_otp_token", member.token())
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
