"""Acknowledging alerts: an acknowledgement is the alert again, tagged, under the same ``key``.

Publishing it on the alert's own notify channel is the whole mechanism: a
keyed notification replaces the earlier one on every open dashboard, the
page snapshot keeps the newest per key, and the broker's history (durable on
redis://) keeps it across a restart. Pure functions; the route is
app/web/acks.py.

An alert is a notification tagged ``alert``; one also tagged
``acknowledged`` or ``cleared`` (published by anyone, e.g. a script that saw
the problem go away) is closed, and its row renders collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from app.events import Event

ALERT_TAG = "alert"
ACK_TAG = "acknowledged"
CLEARED_TAG = "cleared"
AlertState = Literal["open", "acknowledged", "cleared"]


def alert_state(data: dict[str, Any]) -> AlertState | None:
    """``open``, ``acknowledged`` or ``cleared`` for an alert's payload; None for other notes."""
    tags = data.get("tags") or ()
    if ALERT_TAG not in tags:
        return None
    if CLEARED_TAG in tags:
        return "cleared"
    return "acknowledged" if ACK_TAG in tags else "open"


def latest_with_key(events: Sequence[Event], key: str) -> Event | None:
    """The newest of ``events`` whose payload has ``key``."""
    return next((e for e in reversed(events) if e.data.get("key") == key), None)


def ack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The acknowledgement of an open alert: the same payload, tagged ``acknowledged``."""
    return {**alert, "tags": [*alert.get("tags", ()), ACK_TAG]}
