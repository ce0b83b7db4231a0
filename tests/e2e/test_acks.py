"""Alerts from a tailed log, and acknowledging them over HTTP, against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

PUBLIC = "https://dash.example.com/pulse"


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "app.log"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_path: Path) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 0.5, "public_url": PUBLIC},
        "channels": [
            {"name": "ops.alerts", "kind": "notify"},
            {"name": "ops.deploys", "kind": "notify"},
        ],
        "sources": [{"type": "logtail", "channel": "log.app", "path": str(log_path), "lines": 0}],
        "alerts": [
            {
                "name": "Payment failures",
                "channel": "log.*",
                "pattern": "charge failed",
                "notify": "ops.alerts",
                "level": "critical",
                "cooldown": "1s",
            }
        ],
    }
    process = ServerProcess(tmp_path_factory.mktemp("server"), config).start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


def events(server: ServerProcess, channel: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/channels/{channel}/events?limit=1000")
    return list(response.json()["events"])


def raise_alert(server: ServerProcess, log_path: Path, text: str) -> dict[str, Any]:
    """Append a matching line to the tailed file; the alert it raised."""
    with log_path.open("a") as file:
        file.write(f"ERROR payments: charge failed {text}\n")

    def raised() -> bool:
        return any(text in e["data"]["message"] for e in events(server, "ops.alerts"))

    wait_until(raised, f"an alert for {text!r}")
    return next(e for e in events(server, "ops.alerts") if text in e["data"]["message"])


def ack(server: ServerProcess, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/channels/ops.alerts/acks", data={"key": key}, **kwargs)


def test_an_alert_is_titled_by_its_rule_and_links_its_line_absolutely(
    server: ServerProcess, log_path: Path
) -> None:
    alert = raise_alert(server, log_path, "order 1")
    data = alert["data"]
    assert data["title"].startswith("Payment failures")  # "(+N more)" after an earlier storm
    assert data["level"] == "critical"
    [line] = [e for e in events(server, "log.app") if "order 1" in e["data"]["line"]]
    assert data["link"] == f"{PUBLIC}/channels/log.app/lines/{line['id']}#line-{line['id']}"
    page = httpx.get(f"{server.url}/channels/log.app").text
    assert f'id="line-{line["id"]}"' in page


def test_acknowledging_publishes_the_alert_again_tagged_and_only_once(
    server: ServerProcess, log_path: Path
) -> None:
    alert = raise_alert(server, log_path, "order 2")
    key = alert["data"]["key"]
    first = ack(server, key, headers={"HX-Request": "true"})
    assert first.status_code == 201, first.text
    assert first.json()["state"] == "acknowledged"
    latest = events(server, "ops.alerts")[-1]
    assert latest["id"] == first.json()["id"]
    assert latest["data"] == {**alert["data"], "tags": [*alert["data"]["tags"], "acknowledged"]}
    again = ack(server, key, headers={"HX-Request": "true"})
    assert (again.status_code, again.json()) == (200, {"id": latest["id"], "state": "acknowledged"})
    assert events(server, "ops.alerts")[-1]["id"] == latest["id"]
    page = httpx.get(f"{server.url}/channels/ops.alerts").text
    assert 'class="note lvl-critical alert-acknowledged"' in page
    assert f'value="{key}"' not in page  # no Acknowledge form left for it


def test_a_plain_form_post_goes_back_to_the_channel_page(
    server: ServerProcess, log_path: Path
) -> None:
    alert = raise_alert(server, log_path, "order 3")
    response = ack(server, alert["data"]["key"])
    assert (response.status_code, response.headers["Location"]) == (303, "/channels/ops.alerts")


@pytest.mark.parametrize(
    ("channel", "body", "status", "error"),
    [
        ("ops.alerts", {"key": "alert.none.x-1"}, 404, "no alert with key"),
        ("ops.alerts", {}, 400, "key: required"),
        ("ops.alerts", {"key": "k", "by": "me"}, 400, "by: unknown field"),
        ("ops.deploys", {"key": "deploy-1"}, 404, "no alert with key"),
        ("log.app", {"key": "k"}, 409, "is a log channel"),
        ("no.such", {"key": "k"}, 404, "no channel"),
        ("Bad Name", {"key": "k"}, 400, "channel"),
    ],
)
def test_bad_acknowledgements_are_clear_4xx(
    server: ServerProcess, channel: str, body: dict[str, str], status: int, error: str
) -> None:
    httpx.post(f"{server.url}/api/channels/ops.deploys/events", json={"message": "d", "key": "d"})
    response = httpx.post(f"{server.url}/api/channels/{channel}/acks", json=body)
    assert response.status_code == status, response.text
    assert error in response.json()["error"]


def test_a_cross_site_acknowledgement_is_refused(server: ServerProcess, log_path: Path) -> None:
    alert = raise_alert(server, log_path, "order 4")
    response = ack(server, alert["data"]["key"], headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert events(server, "ops.alerts")[-1]["id"] == alert["id"]
