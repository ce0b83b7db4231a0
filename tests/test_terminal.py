"""One line per event for a terminal: per-kind rendering, inert text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.cli.terminal import event_line

TIME = 1_700_000_000.0
CLOCK = datetime.fromtimestamp(TIME).strftime("%H:%M:%S")


def line(channel: str, kind: str, data: dict[str, Any]) -> str:
    return event_line({"id": "e-1", "channel": channel, "kind": kind, "time": TIME, "data": data})


def test_each_kind_has_a_short_human_line() -> None:
    note = {"message": "disk full", "title": "db-1", "level": "critical", "tags": ["disk", "db"]}
    assert line("ops.alerts", "notify", note) == (
        f"{CLOCK} ops.alerts [critical] db-1: disk full #disk #db"
    )
    assert line("log.app", "log", {"line": "ERROR boom", "file": "app.log"}) == (
        f"{CLOCK} log.app ERROR boom"
    )
    assert (
        line("chat.lobby", "chat", {"user": "ann", "text": "hi"}) == f"{CLOCK} chat.lobby ann: hi"
    )
    quote = {"symbol": "ACME", "price": 10.5, "change": -0.25, "change_pct": -2.3, "volume": 3}
    assert line("ticker", "ticker", quote) == f"{CLOCK} ticker ACME 10.50 -0.25 (-2.30%)"


def test_a_plugin_kind_or_odd_payload_prints_its_json() -> None:
    assert line("x.y", "plugin", {"a": 1}) == f'{CLOCK} x.y {{"a": 1}}'
    assert line("x.y", "notify", {"no": "message"}) == f'{CLOCK} x.y {{"no": "message"}}'


def test_event_text_cannot_break_the_line_or_drive_the_terminal() -> None:
    text = line(
        "log.app", "log", {"line": "\x1b[31mred\x1b[0m\nforged\x1b]0;title\x07", "file": "f"}
    )
    assert text == f"{CLOCK} log.app red forged\\x1b]0;title\\x07"
