"""One line of text per event, for ``pulseboard subscribe`` in a terminal.

Deliberate oddity: text from events is made inert before it reaches the
terminal: colour codes are dropped and other control characters (a payload's
own escape sequences, newlines) become visible or spaces, so an event can
neither forge a line nor drive the terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

_SGR = re.compile(r"\x1b\[[0-9;]*m")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def event_line(event: dict[str, Any]) -> str:
    """``12:00:03 ops.alerts [critical] db-1: disk full #disk``: time, channel, the payload."""
    clock = datetime.fromtimestamp(float(event.get("time", 0))).strftime("%H:%M:%S")
    data = event.get("data") or {}
    render = _RENDERERS.get(str(event.get("kind")), _generic)
    try:
        body = render(data)
    except (KeyError, TypeError, ValueError):
        body = _generic(data)
    return f"{clock} {inert(str(event.get('channel', '?')))} {body}"


def inert(text: str) -> str:
    """``text`` on one line, without colour codes or control characters."""
    text = _SGR.sub("", text).replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _notify(data: dict[str, Any]) -> str:
    parts = [f"[{data.get('level', 'info')}]"]
    if data.get("title"):
        parts.append(f"{data['title']}:")
    parts.append(str(data["message"]))
    parts.extend(f"#{tag}" for tag in data.get("tags") or ())
    if data.get("link"):
        parts.append(f"<{data['link']}>")
    return inert(" ".join(parts))


def _log(data: dict[str, Any]) -> str:
    return inert(str(data["line"]))


def _chat(data: dict[str, Any]) -> str:
    return inert(f"{data['user']}: {data['text']}")


def _ticker(data: dict[str, Any]) -> str:
    price, change, pct = float(data["price"]), float(data["change"]), float(data["change_pct"])
    return inert(f"{data['symbol']} {price:.2f} {change:+.2f} ({pct:+.2f}%)")


def _generic(data: dict[str, Any]) -> str:
    return inert(json.dumps(data, ensure_ascii=False, sort_keys=True))


_RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "notify": _notify,
    "log": _log,
    "chat": _chat,
    "ticker": _ticker,
}
