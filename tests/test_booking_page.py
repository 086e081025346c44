"""The demo booking page, run in a real headless Chromium against a live `holds serve --demo`.

Playwright drives Debian's own chromium (never a downloaded browser): its expectations wait for
what a person would see, so the tests assert on text without sleeps of their own.
"""

from __future__ import annotations

import calendar
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeApi
from tests.servers import DemoServer, demo_server

CHROMIUM = "/usr/bin/chromium"
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
TTL = 8  # seconds a hold lasts on the demo server under test

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - a laptop without the dev extra
    sync_playwright = None

needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or sync_playwright is None,
    reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium) and playwright "
    "(pip install -e '.[dev]'); booking page browser tests skipped",
)


# First in the file: it runs on pytest-asyncio's loop, before Playwright's starts in this thread.
async def test_booking_page_is_not_served_without_demo(make_api: MakeApi) -> None:
    api = await make_api()
    for path in ("/demo/", "/demo/config.json", "/demo/booking.js"):
        assert (await api.client.get(path)).status == 404


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("demo"), hold_ttl_seconds=str(TTL)) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: DemoServer, tmp_path: Path) -> Iterator[Any]:
    """The booking page, open in a fresh browser context."""
    context = browser.new_context(viewport={"width": 900, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto(f"{server.base}/demo/")
    yield opened
    context.close()


@contextmanager
def _screenshot_on_failure(page: Any, tmp_path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        shot = tmp_path / "booking-page.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the page when it failed: {shot}")
        raise


def _api(server: DemoServer, path: str) -> Any:
    request = urllib.request.Request(
        server.api + path, headers={"Authorization": f"Bearer {server.key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def _hold_first_slot(page: Any) -> str:
    """Show times, hold the first; the held hold's id, as the API saw it created."""
    page.click("#find")
    with page.expect_response(lambda r: r.url.endswith("/holds") and r.status == 201) as held:
        page.locator("#slots button").first.click()
    hold_id: str = held.value.json()["data"]["id"]
    return hold_id


@needs_browser
def test_page_books_a_slot_through_to_the_confirmation(
    page: Any, server: DemoServer, tmp_path: Path
) -> None:
    with _screenshot_on_failure(page, tmp_path):
        expect(page.locator("#demo-note")).to_contain_text("demo key")
        hold_id = _hold_first_slot(page)
        countdown = re.compile(r"Complete booking within 0:0[0-8]")
        expect(page.locator("#countdown")).to_have_text(countdown)
        page.fill("#first-name", "Sarah")
        page.fill("#last-name", "Johnson")
        page.fill("#date-of-birth", "1985-04-12")
        page.fill("#email", "sarah@example.com")
        page.click("#confirm")
        expect(page.locator("#booked")).to_contain_text("Reference apt_")
        page.screenshot(path=str(tmp_path / "booked.png"), full_page=True)
    hold = _api(server, f"/holds/{hold_id}")
    assert hold["status"] == "confirmed"
    appointment = _api(server, f"/appointments/{hold['appointment_id']}")
    assert (appointment["status"], appointment["attendee_name"]) == ("confirmed", "Sarah Johnson")
    assert hold["appointment_id"] in page.locator("#booked").inner_text()


@needs_browser
def test_page_says_at_once_when_the_hold_expires(
    page: Any, server: DemoServer, tmp_path: Path
) -> None:
    with _screenshot_on_failure(page, tmp_path):
        hold_id = _hold_first_slot(page)
        expires_at = _api(server, f"/holds/{hold_id}")["expires_at"]
        expect(page.locator("#extend")).to_be_visible()  # offered as the end nears
        expect(page.locator("#message")).to_contain_text("expired", timeout=(TTL + 5) * 1000)
        assert time.time() - calendar.timegm(time.strptime(expires_at, TIMESTAMP)) < 2.0
        expect(page.locator("#slots button").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "expired.png"), full_page=True)
    assert _api(server, f"/holds/{hold_id}")["status"] == "expired"


@needs_browser
def test_extend_button_gives_the_hold_more_time(
    page: Any, server: DemoServer, tmp_path: Path
) -> None:
    with _screenshot_on_failure(page, tmp_path):
        hold_id = _hold_first_slot(page)
        before = _api(server, f"/holds/{hold_id}")["expires_at"]
        page.locator("#extend").click()  # waits until it is offered
        expect(page.locator("#countdown")).to_have_text(re.compile(r"within 0:0[5-8]"))
    assert _api(server, f"/holds/{hold_id}")["expires_at"] > before
