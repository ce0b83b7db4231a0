"""The log viewer's history routes on a real server: older pages and downloads (issue 15)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

LINES = 5000
USERS = ["alice", "bob", "carol", "dave"]
LEVELS = ["INFO", "WARN", "ERROR", "DEBUG"]


def line(n: int) -> str:
    return f"{LEVELS[n % 4]} request {n:05d} user={USERS[n % 3]} took {n % 97} ms"


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "app.log"
    path.write_text("".join(f"{line(n)}\n" for n in range(LINES)))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_path: Path) -> Iterator[ServerProcess]:
    config = {
        "broker": {"history": LINES},
        "sources": [{"type": "logtail", "path": str(log_path), "lines": LINES}],
    }
    server = ServerProcess(tmp_path_factory.mktemp("server"), config).start()
    wait_until(lambda: retained(server) == LINES, f"{LINES} lines retained")
    yield server
    server.stop()
    assert "Traceback" not in server.log()


def retained(server: ServerProcess) -> int:
    channels = httpx.get(f"{server.url}/api/channels").json()["channels"]
    return next((c["retained"] for c in channels if c["name"] == "log.app"), 0)


def grep(pattern: str, path: Path) -> str:
    found = subprocess.run(["grep", "-E", pattern, str(path)], capture_output=True, check=True)
    return found.stdout.decode()


def test_a_filtered_download_equals_grep_of_the_file(server: ServerProcess, log_path: Path) -> None:
    pattern = "user=(alice|carol) took [0-9]{2} ms"
    with httpx.stream(
        "GET", f"{server.url}/channels/log.app/download", params={"q": pattern, "format": "text"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert 'filename="log.app.log"' in response.headers["content-disposition"]
        assert "content-length" not in response.headers  # streamed
        body = response.read().decode()
    assert body == grep(pattern, log_path)


def test_the_whole_view_downloads_as_ndjson_with_the_level_filter(server: ServerProcess) -> None:
    response = httpx.get(
        f"{server.url}/channels/log.app/download", params={"level": "warn", "format": "ndjson"}
    )
    assert response.headers["content-type"] == "application/x-ndjson"
    events = [json.loads(text) for text in response.text.splitlines()]
    wanted = [line(n) for n in range(LINES) if LEVELS[n % 4] in ("WARN", "ERROR")]
    assert [event["data"]["line"] for event in events] == wanted
    assert {event["channel"] for event in events} == {"log.app"}


def test_older_pages_reach_the_start_of_retention(server: ServerProcess) -> None:
    url = f"{server.url}/channels/log.app/older"
    html = httpx.get(url).text
    numbers: list[int] = []
    for _ in range(LINES // 100):
        page = [int(n) for n in re.findall(r"request (\d{5})", html)]
        numbers = page + numbers
        cursor = re.search(r'older\?before=([^"&]+)"', html)
        if cursor is None:
            break
        assert 'class="older old"' in html and 'hx-swap-oob="outerHTML"' in html
        html = httpx.get(url, params={"before": cursor.group(1)}).text
    assert "Start of retention" in html
    assert numbers == list(range(LINES))


def test_the_first_older_page_starts_before_the_row_htmx_targets(server: ServerProcess) -> None:
    newest = httpx.get(f"{server.url}/channels/log.app/older").text
    first_id = re.search(r'<li id="line-([^"]+)"', newest)
    assert first_id is not None
    older = httpx.get(
        f"{server.url}/channels/log.app/older",
        params={"q": "user=bob"},
        headers={"HX-Request": "true", "HX-Target": f"line-{first_id.group(1)}"},
    ).text
    first_number = int(re.findall(r"request (\d{5})", newest)[0])
    numbers = [int(n) for n in re.findall(r"request (\d{5})", older)]
    assert numbers == [n for n in range(first_number) if n % 3 == 1][-500:]
    assert "<mark>user=bob</mark>" in older


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("older", {"q": "(unclosed"}, 400, "q"),
        ("older", {"before": "not an id"}, 400, "before"),
        ("download", {"level": "loud"}, 400, "level"),
        ("download", {"format": "xml"}, 400, "format"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    server: ServerProcess, path: str, params: dict[str, str], status: int, field: str
) -> None:
    response = httpx.get(f"{server.url}/channels/log.app/{path}", params=params)
    assert response.status_code == status
    assert field in response.json()["error"]


@pytest.mark.parametrize("channel", ["log.nothing", "Bad..Name"])
def test_an_unknown_log_channel_is_a_404(server: ServerProcess, channel: str) -> None:
    for path in ("older", "download"):
        response = httpx.get(f"{server.url}/channels/{channel}/{path}")
        assert response.status_code == 404
        assert response.json()["error"]
