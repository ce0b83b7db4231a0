"""With read tokens, the dashboard asks for a token once, then streams with the session cookie."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LogFile, dashboard_config, expect_connection, screenshot, served
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

READ_TOKEN = "read-token-for-the-wall"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    config = {
        **dashboard_config(log_file.path),
        "auth": {"read_tokens": [READ_TOKEN], "secret_key": "a secret key of the tests"},
    }
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def test_sign_in_once_then_the_dashboard_streams(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    page.goto(f"{server.url}/channels/log.app")
    expect(page).to_have_url(f"{server.url}/login?next=/channels/log.app")
    screenshot(page, "login")
    page.fill("input[name=token]", "wrong-token-here")
    page.click("button[type=submit]")
    expect(page.locator(".form-error")).to_be_visible()
    page.fill("input[name=token]", READ_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/channels/log.app")
    expect_connection(page, "Live")
    log_file.append("INFO seen after signing in")
    expect(page.locator("#log-app-list")).to_contain_text("seen after signing in")
