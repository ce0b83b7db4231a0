"""Alerts on the dashboard: raised from a tailed log, acknowledged on one page, seen on another."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, dashboard_config, expect_connection, served
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

RULE = {
    "name": "Payment failures",
    "channel": "log.*",
    "pattern": "charge failed",
    "notify": "ops.alerts",
    "cooldown": "1s",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    config = {**dashboard_config(log_file.path), "alerts": [RULE]}
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def open_live(browser: Browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    expect_connection(page, "Live", timeout_ms=10000)
    return page


@pytest.mark.slow
def test_an_alert_acknowledged_on_one_page_collapses_on_another_and_after_a_reload(
    browser: Browser, server: ServerProcess, log_file: LogFile
) -> None:
    first = open_live(browser, server.url)
    second = open_live(browser, f"{server.url}/channels/ops.alerts")
    log_file.append("2026-12-01 16:40:00 ERROR payments: charge failed for order 77")
    for page in (first, second):
        row = page.locator("#ops-alerts-list > li.alert-open", has_text="order 77")
        expect(row).to_have_count(1, timeout=10000)
        expect(row.locator(".title")).to_contain_text("Payment failures")  # "(+N more)" too
    first.locator("#ops-alerts-list > li.alert-open", has_text="order 77").get_by_role(
        "button", name="Acknowledge"
    ).click()
    for page in (second, first):
        acked = page.locator("#ops-alerts-list > li.alert-acknowledged", has_text="order 77")
        expect(acked).to_have_count(1, timeout=10000)
        expect(acked.locator("details")).not_to_have_attribute("open", "")
        expect(acked.locator(".text")).not_to_be_visible()  # collapsed
        still_open = page.locator("#ops-alerts-list > li.alert-open", has_text="order 77")
        expect(still_open).to_have_count(0)
    second.reload()
    acked = second.locator("#ops-alerts-list > li.alert-acknowledged", has_text="order 77")
    expect(acked).to_have_count(1)
    acked.locator("summary").click()
    expect(acked.locator(".text")).to_be_visible()
    for page in (first, second):
        page.context.close()


@pytest.mark.slow
def test_the_alerts_link_opens_the_log_page_at_the_line(
    browser: Browser, server: ServerProcess, log_file: LogFile
) -> None:
    page = open_live(browser, f"{server.url}/channels/ops.alerts")
    log_file.append("2026-12-01 16:41:00 ERROR payments: charge failed for order 78")
    row = page.locator("#ops-alerts-list > li", has_text="order 78")
    expect(row).to_have_count(1, timeout=10000)
    link = row.locator("a.link")
    href = link.get_attribute("href")
    assert href is not None and href.startswith(f"{server.url}/channels/log.app/lines/")
    link.click()
    expect(page).to_have_url(href)
    # the context view: the anchored row, marked, among its neighbours (no stream replaces it)
    target = page.locator(f"[id='{href.split('#', 1)[1]}']")
    expect(target).to_contain_text("charge failed for order 78")
    expect(target).to_have_class(re.compile(r"\banchor\b"))
    expect(target).to_be_in_viewport()
    # The live viewer at the same anchor: the row stays the browser's :target, outlined, once
    # the stream is live and lines follow (the stream resumes after the page's rows).
    page.goto(f"{server.url}/channels/log.app#{href.split('#', 1)[1]}")
    expect_connection(page, "Live", timeout_ms=10000)
    log_file.append("2026-12-01 16:41:01 INFO payments: next line after order 78")
    expect(page.locator("#log-app-list > li.line").last).to_contain_text("next line after")
    targeted = page.locator("#log-app-list > li.line:target")
    expect(targeted).to_have_count(1)
    expect(targeted).to_contain_text("charge failed for order 78")
    outline = targeted.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"
    page.context.close()
