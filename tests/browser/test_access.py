"""In Chromium: a scoped viewer's pages, "no access", sign-out, and a kiosk link opened once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, dashboard_config, expect_connection, screenshot, served
from tests.support.cli import pulseboard
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

OPS = "ops-only-token-of-the-wall"  # reads ops.*, publishes ops.*
ADMIN = "admin-token-of-the-wall"


def access_config(log_path: Any) -> dict[str, Any]:
    """The dashboard's channels, two boards, and a token that reads only ``ops.*``."""
    return {
        **dashboard_config(log_path),
        "auth": {
            "secret_key": "a secret key of the access tests",
            "tokens": [
                {"token": OPS, "read": ["ops.*"], "publish": ["ops.*"]},
                {"token": ADMIN, "read": ["*", "*.*"], "publish": ["*", "*.*"]},
            ],
        },
        "boards": [
            {"name": "wall", "title": "Wall", "channels": ["log.*", "ticker", "ops.*"]},
            {"name": "ops", "title": "Ops", "channels": ["ops.*"]},
            {"name": "markets", "title": "Markets", "channels": ["ticker"]},
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    config = access_config(log_file.path)
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def sign_in(page: Page, server: ServerProcess, token: str, target: str = "/") -> None:
    page.goto(f"{server.url}/login?next={target}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("#main")).to_be_visible()


def publish(server: ServerProcess, channel: str, message: str) -> None:
    answer = httpx.post(
        f"{server.url}/api/channels/{channel}/events",
        content=message,
        headers={"Authorization": f"Bearer {OPS}", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 201, answer.text


def test_a_scoped_viewer_sees_exactly_its_channels(page: Page, server: ServerProcess) -> None:
    publish(server, "ops.access-backups", "backup of the access test done")
    sign_in(page, server, OPS)
    expect(page.locator(".panel")).to_have_count(2)  # ops.alerts and the published channel
    expect(page.locator("#main")).to_contain_text("backup of the access test done")
    nav = page.locator("nav")
    expect(nav.locator(".nav-board")).to_have_text(["Wall", "Ops"])  # not Markets
    expect(nav).not_to_contain_text("log.app")
    expect(nav).to_contain_text("ops.access-backups")
    expect_connection(page, "Live")
    publish(server, "ops.access-late", "a channel created while the board is open")
    expect(page.locator("#main")).to_contain_text("a channel created while", timeout=20_000)
    screenshot(page, "access-scoped-wall")


def test_unreadable_says_no_access_and_missing_says_not_found(
    page: Page, server: ServerProcess
) -> None:
    sign_in(page, server, OPS)
    answer = page.goto(f"{server.url}/channels/log.app")
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_have_text("No access to “log.app”")
    screenshot(page, "access-no-access")
    answer = page.goto(f"{server.url}/boards/markets")
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_have_text("No access to board “markets”")
    answer = page.goto(f"{server.url}/channels/ops.never-published")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("No channel “ops.never-published”")


def test_sign_out_button_on_every_page_ends_the_session(page: Page, server: ServerProcess) -> None:
    sign_in(page, server, ADMIN)
    for path in ("/", "/boards/markets", "/channels/log.app", "/channels/ticker", "/channels/x.y"):
        page.goto(f"{server.url}{path}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/boards/markets")
    expect(page).to_have_url(f"{server.url}/login?next=/boards/markets")


def test_kiosk_link_signs_a_wall_in_once(browser: Browser, server: ServerProcess) -> None:
    env = {"PULSEBOARD_URL": server.url, "PULSEBOARD_TOKEN": OPS}
    made = pulseboard("kiosk-link", "--board", "ops", "--ttl", "5m", env=env)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(f"{server.url}/kiosk?code=")
    wall = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = wall.new_page()
        page.goto(url)
        expect(page).to_have_url(f"{server.url}/boards/ops?kiosk=1")  # no code in the address
        expect(page.locator("nav")).to_have_count(0)
        expect_connection(page, "Live")
        expect(page.locator(".panel")).not_to_have_count(0)
        screenshot(page, "access-kiosk-board")
        again = page.goto(url)
        assert again is not None and again.status == 410
        expect(page.locator(".form-error")).to_have_text(
            "This kiosk link was already used or has expired."
        )
        screenshot(page, "access-kiosk-used")
    finally:
        wall.close()
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(url)  # a second screen with the same link: refused, not signed in
        expect(fresh.locator("h1")).to_contain_text("Pulseboard")
        fresh.goto(f"{server.url}/boards/ops")
        expect(fresh).to_have_url(f"{server.url}/login?next=/boards/ops")
    finally:
        other.close()


def test_kiosk_link_refusals_are_one_line(server: ServerProcess) -> None:
    env = {"PULSEBOARD_URL": server.url, "PULSEBOARD_TOKEN": OPS}
    refused = pulseboard("kiosk-link", "--board", "markets", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "pulseboard: 403: this token may read no channel of board 'markets'"
    )
