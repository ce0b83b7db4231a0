"""The dashboard in a real browser: live panels, chat across pages, inert user text, screenshots."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

XSS = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(2)</script>",
    '<b hx-get="/xss" hx-trigger="load">bold</b>',
]
OSC8_LINK = "\x1b]8;;javascript:alert(3)\x1b\\click me\x1b]8;;\x1b\\"


def open_live(page: Page, url: str) -> Page:
    page.goto(url)
    expect_connection(page, "Live", timeout_ms=5000)
    return page


def post(server: ServerProcess, channel: str, payload: dict[str, object]) -> None:
    url = f"{server.url}/api/channels/{channel}/events"
    response = httpx.post(url, json=payload, timeout=5)
    assert response.status_code == 201, response.text


def test_dashboard_has_a_live_panel_per_channel(page: Page, server: ServerProcess) -> None:
    open_live(page, server.url)
    for list_id in ("chat-lobby-list", "ops-alerts-list", "log-app-list", "ticker-list"):
        expect(page.locator(f"#{list_id}")).to_be_attached()
    expect(page.locator("#ticker-list > li")).to_have_count(4, timeout=10000)


@pytest.mark.slow
def test_indicator_stays_live_while_events_flow(page: Page, server: ServerProcess) -> None:
    open_live(page, server.url)
    page.wait_for_timeout(4000)  # longer than --conn-retry-after (2 heartbeats + 1 s)
    expect_connection(page, "Live", timeout_ms=100)


def test_ticker_prices_change_on_screen(page: Page, server: ServerProcess) -> None:
    open_live(page, server.url)
    price = page.locator("#ticker-sym-kACME .px")
    expect(price).to_be_visible()
    before = price.inner_text()
    expect(price).not_to_have_text(before, timeout=10000)
    expect(page.locator("#ticker-sym-kACME svg.spark polyline")).to_be_attached()


@pytest.mark.slow
def test_message_sent_from_page_a_appears_on_page_b(
    browser: Browser, server: ServerProcess
) -> None:
    pages = [browser.new_context().new_page() for _ in range(2)]
    try:
        sender, reader = (open_live(p, f"{server.url}/channels/chat.lobby") for p in pages)
        sender.fill("#chat-lobby-form input[name=user]", "ann")
        sender.fill("#chat-lobby-form input[name=text]", "hello from page A")
        sender.click("#chat-lobby-form button")
        expect(reader.locator("#chat-lobby-list")).to_contain_text("hello from page A")
        expect(reader.locator("#chat-lobby-list .nick").last).to_have_text("ann")
    finally:
        for p in pages:
            p.context.close()


def test_chat_form_clears_after_sending_and_remembers_the_nick(
    page: Page, server: ServerProcess
) -> None:
    open_live(page, f"{server.url}/channels/chat.lobby")
    page.fill("#chat-lobby-form input[name=user]", "zoe")
    page.fill("#chat-lobby-form input[name=text]", "clears after sending")
    page.click("#chat-lobby-form button")
    expect(page.locator("#chat-lobby-list")).to_contain_text("clears after sending")
    expect(page.locator("#chat-lobby-form input[name=text]")).to_have_value("")
    expect(page.locator("#chat-lobby-form input[name=text]")).to_be_focused()
    page.reload()
    expect(page.locator("#chat-lobby-form input[name=user]")).to_have_value("zoe")


def test_chat_errors_are_shown_inline(page: Page, server: ServerProcess) -> None:
    open_live(page, f"{server.url}/channels/chat.lobby")
    page.fill("#chat-lobby-form input[name=user]", "zoe")
    page.fill("#chat-lobby-form input[name=text]", "x" * 2001)
    page.click("#chat-lobby-form button")
    expect(page.locator("#chat-lobby-form .form-error")).to_contain_text("text")
    expect(page.locator("#chat-lobby-form input[name=text]")).to_have_value("x" * 2001)
    screenshot(page, "chat-error")


@pytest.mark.slow
def test_chat_panel_keeps_at_most_200_messages(page: Page, server: ServerProcess) -> None:
    open_live(page, server.url)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for n in range(230):
            payload = {"user": "flood", "text": f"cap message {n:03d}"}
            assert client.post("/api/channels/chat.lobby/events", json=payload).is_success
    messages = page.locator("#chat-lobby-list > li")
    expect(messages.last).to_contain_text("cap message 229")
    expect(messages).to_have_count(200)
    expect(messages.first).to_contain_text("cap message 030")


def test_keyed_notification_replaces_the_earlier_one_in_place(
    page: Page, server: ServerProcess
) -> None:
    channel = "ops.keyed"  # its own channel: other tests' notes cannot push these out
    post(server, channel, {"message": "first note", "level": "info"})
    open_live(page, f"{server.url}/channels/{channel}")
    post(server, channel, {"message": "deploy 7 started", "key": "deploy-7"})
    post(server, channel, {"message": "unrelated backup done", "level": "success"})
    post(server, channel, {"message": "deploy 7 finished", "key": "deploy-7"})
    for _ in range(2):
        notes = page.locator("#ops-keyed-list > li")
        expect(notes.filter(has_text="deploy 7 finished")).to_have_count(1)
        expect(notes.filter(has_text="deploy 7 started")).to_have_count(0)
        backup = notes.filter(has_text="unrelated backup done")
        deploy = notes.filter(has_text="deploy 7 finished")
        expect(backup).to_be_visible()
        expect(deploy).to_be_visible()
        backup_box, deploy_box = backup.bounding_box(), deploy.bounding_box()
        assert backup_box and deploy_box, "both notes are drawn"
        assert backup_box["y"] < deploy_box["y"], "the key kept its place"
        page.reload()


def test_user_text_renders_as_inert_visible_text(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_live(page, server.url)
    publish_payloads(server, log_file, "live")
    assert_inert_and_visible(page, "live")
    page.reload()
    assert_inert_and_visible(page, "live")
    screenshot(page, "xss-inert")
    assert not [url for url in requests if "/xss" in url or url.startswith("javascript")]


def publish_payloads(server: ServerProcess, log_file: LogFile, tag: str) -> None:
    text = f"{tag} " + " ".join(XSS)
    post(server, "chat.lobby", {"user": "mallory", "text": text})
    post(server, "ops.alerts", {"title": text, "message": f"{tag} message", "level": "error"})
    log_file.append(f"{text} {OSC8_LINK}")


def assert_inert_and_visible(page: Page, tag: str) -> None:
    text = f"{tag} " + " ".join(XSS)
    for list_id in ("chat-lobby-list", "ops-alerts-list", "log-app-list"):
        expect(page.locator(f"#{list_id}")).to_contain_text(text)
    expect(page.locator("#log-app-list")).to_contain_text("click me")
    main = page.locator("#main")
    injected = ("img", "script", "[hx-get]:not(.older)", "[onerror]", "a[href^='javascript']", "b")
    for selector in injected:  # .older: the log viewer's own "load older" row
        expect(main.locator(selector)).to_have_count(0)


PAGES = [
    ("dashboard", "/", 1440, 1000),
    ("dashboard-wall", "/", 2560, 1440),
    ("dashboard-phone", "/", 390, 844),
    ("log-viewer", "/channels/log.app", 1280, 800),
    ("log-viewer-phone", "/channels/log.app?q=api&level=info", 390, 844),
    ("ticker-board", "/channels/ticker", 1280, 720),
    ("ticker-board-phone", "/channels/ticker", 390, 844),
    ("chat-room", "/channels/chat.lobby", 1024, 720),
    ("notifications", "/channels/ops.alerts", 1024, 720),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("name", "path", "width", "height"), PAGES)
def test_screenshot_every_page(
    browser: Browser,
    server: ServerProcess,
    log_file: LogFile,
    name: str,
    path: str,
    width: int,
    height: int,
    scheme: str,
) -> None:
    seed_demo_content(server, log_file)
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        page = open_live(context.new_page(), server.url + path)
        expect(page.locator("#ticker-list > li, #main .rows > li").first).to_be_attached()
        screenshot(page, f"{name}-{scheme}")
    finally:
        context.close()


def seed_demo_content(server: ServerProcess, log_file: LogFile) -> None:
    """Some chat, notifications and log lines, published once per module."""
    if getattr(seed_demo_content, "seeded", None) == server.url:
        return
    seed_demo_content.seeded = server.url  # type: ignore[attr-defined]
    post(server, "chat.lobby", {"user": "ann", "text": "Deploy 4.2 is rolling out, eyes on errors"})
    post(server, "chat.lobby", {"user": "bob", "text": "Error rate flat so far 👍"})
    post(
        server,
        "ops.alerts",
        {
            "title": "Nightly backup",
            "message": "Finished in 42 s",
            "level": "success",
            "tags": ["db", "backup"],
        },
    )
    post(
        server,
        "ops.alerts",
        {
            "title": "Disk space",
            "message": "db-2 is 91% full",
            "level": "warning",
            "tags": ["db-2"],
            "link": "https://grafana.example/d/disk",
        },
    )
    log_file.append(
        "2026-11-27 19:00:01 INFO api request GET /items 200 12ms",
        "2026-11-27 19:00:02 WARN api slow upstream inventory 1450ms",
        "2026-11-27 19:00:03 ERROR api upstream inventory timed out after 5000ms",
        "2026-11-27 19:00:04 DEBUG cache miss key=items:page:2",
    )


@pytest.mark.parametrize(
    "path", ["/", "/channels/log.app", "/channels/ticker", "/channels/chat.lobby"]
)
def test_pages_work_under_the_csp_without_violations(
    page: Page, server: ServerProcess, path: str
) -> None:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(f"{server.url}{path}")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect_connection(page, "Live", timeout_ms=5000)
    page.wait_for_timeout(500)  # let late console messages arrive
    violations = [m for m in messages if "Content Security Policy" in m]
    assert not violations, violations


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_dashboard_left_open_logs_nothing_in_the_console(
    page: Page, server: ServerProcess, log_file: LogFile, console: list[str]
) -> None:
    """Every kind's cap and replaced rows delete only what exists: not one console message."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for n in range(250):  # more history than the page shows (50) and than the cap (200)
            client.post("/api/channels/chat.lobby/events", json={"user": "old", "text": f"{n}"})
        open_live(page, server.url)
        for n in range(60):  # 6 s: the ticker publishes ~120 quotes meanwhile
            chat = {"user": "live", "text": f"console chat {n}"}
            assert client.post("/api/channels/chat.lobby/events", json=chat).is_success
            note = {"message": f"console job {n}", "key": f"console-job-{n % 5}"}
            assert client.post("/api/channels/ops.alerts/events", json=note).is_success
            log_file.append(f"INFO console line {n}")
            page.wait_for_timeout(100)  # the writers' pace, while the page is open
    expect(page.locator("#log-app-list > li.line").last).to_contain_text("console line 59")
    expect(page.locator("#chat-lobby-list > li").last).to_contain_text("console chat 59")
    assert console == [], f"{len(console)} console messages, first: {console[:3]}"
