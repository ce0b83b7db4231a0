"""A page on another origin reads the stream with a token, in a real browser (issue 16.2, CORS)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.server import ServerProcess, free_port

TOKEN = "reader-and-publisher-1"
PAGE = """<!doctype html><title>status</title><pre id="out">waiting</pre><script>
const out = document.getElementById("out");
fetch(new URLSearchParams(location.search).get("stream"), {
  headers: {"Authorization": "Bearer TOKEN", "Last-Event-ID": "zz-1"},
}).then(async (response) => {
  const reader = response.body.getReader();
  let text = "";
  while (!text.includes("deploy 1")) {
    const {value, done} = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  out.textContent = "read: " + text;
}).catch((error) => { out.textContent = "blocked: " + error; });
</script>""".replace("TOKEN", TOKEN)


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static site on another port of 127.0.0.1: another origin, in the same address space."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE)
    handler = partial(QuietHandler, directory=str(root))
    site = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()
    thread.join(timeout=10)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def start(tmp_path: Path, origins: list[str]) -> ServerProcess:
    config = {
        "server": {"cors_origins": origins},
        "auth": {"publish_tokens": [TOKEN], "read_tokens": [TOKEN]},
    }
    server = ServerProcess(tmp_path, config).start()
    published = httpx.post(
        f"{server.url}/api/channels/ops.deploys/events",
        content=b"deploy 1",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert published.status_code == 201, published.text
    return server


def read_from(browser: Browser, other_origin: str, server: ServerProcess) -> str:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{other_origin}/index.html?stream={server.url}/events?channel=ops.deploys")
        page.wait_for_function(
            "document.getElementById('out').textContent !== 'waiting'", timeout=15000
        )
        return str(page.locator("#out").text_content())
    finally:
        context.close()


def test_a_listed_origin_reads_the_stream_with_a_token(
    browser: Browser, other_origin: str, tmp_path: Path
) -> None:
    server = start(tmp_path, [other_origin])
    try:
        text = read_from(browser, other_origin, server)
    finally:
        server.stop()
    assert text.startswith("read: "), text
    assert '"message":"deploy 1"' in text


def test_another_origin_is_blocked_by_the_browser(
    browser: Browser, other_origin: str, tmp_path: Path
) -> None:
    server = start(tmp_path, ["https://status.example"])
    try:
        text = read_from(browser, other_origin, server)
    finally:
        server.stop()
    assert text.startswith("blocked: "), text
