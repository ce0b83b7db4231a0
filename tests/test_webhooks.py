"""Webhook bodies per format, checked against each service's documented shape and limits."""

from __future__ import annotations

from typing import Any

import pytest

from app.webhooks import ntfy_target, webhook_request
from tests.support.webhook_shapes import SHAPES, escape_slack

LINK = "https://dash.example.com/channels/log.app#line-abc-7"


def facts(line: str = "ERROR payments: charge failed", **extra: Any) -> dict[str, Any]:
    return {
        "rule": "Payments errors",
        "title": "Payments errors",
        "alert_level": "error",
        "pattern": "ERROR",
        "channel": "log.app",
        "file": "app.log",
        "line": line,
        "level": "error",
        "id": "abc-7",
        "time": 1_764_600_000.25,
        "suppressed": 0,
        "link": LINK,
        "key": "alert.payments-errors.abc-7",
        **extra,
    }


@pytest.mark.parametrize("fmt", ["json", "slack", "discord", "ntfy"])
def test_each_format_says_the_rule_the_line_the_file_and_the_link(fmt: Any) -> None:
    url, body = webhook_request(fmt, "https://hooks.example.com/ops-alerts", facts())
    said = SHAPES[fmt](body)
    assert said["title"] == "Payments errors"
    assert "ERROR payments: charge failed" in said["line"]
    assert "app.log" in said["file"]
    assert said["link"] == LINK
    root = fmt == "ntfy"
    assert url == ("https://hooks.example.com/" if root else "https://hooks.example.com/ops-alerts")


@pytest.mark.parametrize("fmt", ["slack", "discord", "ntfy"])
def test_a_huge_hostile_line_and_a_long_name_stay_within_every_limit(fmt: Any) -> None:
    line = "<!channel> @everyone ```&<>é " * 10_000
    long = facts(line, title="N" * 300, rule="N" * 300, file="f" * 2000)
    _url, body = webhook_request(fmt, "https://hooks.example.com/t", long)
    said = SHAPES[fmt](body)  # asserts each documented limit
    assert said["link"] == LINK


def test_slack_escapes_what_it_would_read_as_markup() -> None:
    _url, body = webhook_request("slack", "https://hooks.slack.com/x", facts("a <!channel> & b"))
    said = SHAPES["slack"](body)
    assert escape_slack("a <!channel> & b") in said["line"]


def test_discord_pings_nobody_whatever_the_line_says() -> None:
    _url, body = webhook_request("discord", "https://discord.com/api/webhooks/1/t", facts("@here"))
    assert body["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://ntfy.sh/ops-alerts", ("https://ntfy.sh/", "ops-alerts")),
        ("http://127.0.0.1:8080/ntfy/ops_1", ("http://127.0.0.1:8080/ntfy/", "ops_1")),
        ("https://ntfy.sh/", None),
        ("https://ntfy.sh/a.b", None),
    ],
)
def test_an_ntfy_topic_url_splits_into_the_root_and_the_topic(
    url: str, target: tuple[str, str] | None
) -> None:
    assert ntfy_target(url) == target
