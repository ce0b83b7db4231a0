"""axe-core on every page, light and dark, wall and phone, the ticker caught mid-flash.

Zero critical or serious violations: the audit of issue 17 found a log panel the keyboard
could not reach and ticker flashes below 4.5:1.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, dashboard_config, screenshot, served
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READ_TOKEN = "read-token-for-the-audit"
SCOPED_TOKEN = "log-only-token-for-the-audit"  # reads log.*: the ticker is "no access" to it
SIZES = {"wall": (1600, 1000), "phone": (390, 844)}
SEARCH = "/channels/log.app?q=LINE+1&ignore_case=1"  # search results, then a match's context
PAGES = [
    "/",
    "/boards/ops",
    "/channels/log.app",
    SEARCH,
    "/channels/chat.lobby",
    "/channels/ticker",
]
BLOCKING = {"critical", "serious"}
AXE = Axe()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    """The dashboard's config behind a read token (so /login is a page), with one board."""
    config = {
        **dashboard_config(log_file.path),
        "auth": {
            "read_tokens": [READ_TOKEN],
            "tokens": [{"token": SCOPED_TOKEN, "read": ["log.*"]}],
            "secret_key": "a secret key of the audit",
        },
        "boards": [
            {"name": "main", "title": "Main", "channels": ["*"]},
            {"name": "ops", "title": "Ops", "columns": 2, "channels": ["log.*", "ticker"]},
        ],
    }
    log_file.append(*(f"INFO line {n} of the audit, long enough to matter" for n in range(60)))
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def blocking_violations(page: Page) -> list[str]:
    """Each critical or serious axe violation as "rule: target" lines a failure can print."""
    results: dict[str, Any] = AXE.run(page).response
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node.get('failureSummary', '')[:300]}"
        for v in results["violations"]
        if v["impact"] in BLOCKING
        for node in v["nodes"]
    ]


def freeze_flash(page: Page) -> None:
    """Wait for a quote's flash, then hold every animation at its first frame (strongest colour)."""
    expect(page.locator(".quote.tick-up, .quote.tick-down").first).to_be_attached(timeout=15_000)
    page.evaluate("document.getAnimations().forEach(a => { a.pause(); a.currentTime = 0; })")


class Audit:
    """One page of a given size and colour scheme, and the violations found on it so far."""

    def __init__(self, page: Page, size: str, scheme: str) -> None:
        self.page, self.name = page, f"a11y-{size}-{scheme}"
        self.found: dict[str, list[str]] = {}

    def __call__(self, where: str, shot: str | None = None) -> None:
        """Audit the page as it is now under ``where``; take a screenshot named ``shot`` first."""
        if shot is not None:
            screenshot(self.page, f"{self.name}-{shot}")
        self.found[where] = blocking_violations(self.page)


@contextlib.contextmanager
def audit(browser: Browser, size: str, scheme: str) -> Iterator[Audit]:
    """An :class:`Audit` in a context of its own; at the end, one failure listing every find."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        audited = Audit(context.new_page(), size, scheme)
        yield audited
        report = [f"{where}: {line}" for where, lines in audited.found.items() for line in lines]
        assert not report, "\n".join(report)
    finally:
        context.close()


def sign_in(page: Page, token: str) -> None:
    """Submit the sign-in form the page shows."""
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_no_serious_violations_on_any_page(
    browser: Browser, server: ServerProcess, scheme: str, size: str
) -> None:
    with audit(browser, size, scheme) as check:
        page = check.page
        page.goto(f"{server.url}/login")
        check("/login")
        sign_in(page, READ_TOKEN)
        expect(page.locator("#main")).to_be_visible()
        for path in PAGES:
            page.goto(f"{server.url}{path}")
            expect(page.locator("#main")).to_be_visible()
            if path in ("/", "/boards/ops", "/channels/ticker"):
                freeze_flash(page)
            slug = path.strip("/").split("?")[0].replace("/", "-") + (
                "-search" if "?" in path else ""
            )
            check(path, shot=slug or "home")
        page.goto(f"{server.url}{SEARCH}")
        page.locator("a.ctx").first.click()
        expect(page.locator("li.line.anchor")).to_be_visible()
        check("context view", shot="context")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_no_serious_violations_on_access_and_kiosk_pages(
    browser: Browser, server: ServerProcess, scheme: str, size: str
) -> None:
    """The no-access page, a kiosk board, a used and an empty kiosk link, all signed in or not."""
    made = httpx.post(
        f"{server.url}/api/kiosk-links",
        json={"board": "ops"},
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert made.status_code == 201, made.text
    with audit(browser, size, scheme) as check:
        page = check.page
        page.goto(made.json()["url"])
        expect(page).to_have_url(f"{server.url}/boards/ops?kiosk=1")
        freeze_flash(page)
        check("kiosk board")
        page.goto(made.json()["url"])
        expect(page.locator(".form-error")).to_be_visible()
        check("used kiosk link")
        page.goto(f"{server.url}/kiosk")
        check("kiosk link without code")
        page.goto(f"{server.url}/login?next=/channels/ticker")
        sign_in(page, SCOPED_TOKEN)
        expect(page.locator("h1")).to_have_text("No access to “ticker”")
        check("no access", shot="no-access")
        page.goto(f"{server.url}/channels/log.missing")
        expect(page.locator("h1")).to_have_text("No channel “log.missing”")
        check("not found")


def test_ticker_says_which_columns_are_since_the_open(page: Page, server: ServerProcess) -> None:
    """The arrow follows the last tick, change and % the open: the head and each row say which."""
    page.goto(f"{server.url}/login?next=/channels/ticker")
    sign_in(page, READ_TOKEN)
    expect(page.locator(".quote-head .chg")).to_have_text("Since open")
    expect(page.locator(".quote-head .pct")).to_have_text("% open")
    moved = page.locator(".quote.tick-up, .quote.tick-down").first
    label = re.compile(r"(up|down) on the last tick; since open")
    expect(moved).to_have_attribute("aria-label", label)


def test_a_panel_without_a_title_names_its_channel_once(page: Page, server: ServerProcess) -> None:
    """log.app has no title: the heading is the channel, the kind line does not repeat it."""
    page.goto(f"{server.url}/login?next=/boards/ops")
    sign_in(page, READ_TOKEN)
    head = page.locator(".panel-log .panel-head")
    expect(head).to_have_text(re.compile(r"^\s*log\.app\s*log\s*Wrap\s*$"))
