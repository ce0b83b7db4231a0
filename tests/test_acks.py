"""Alert states and acknowledgements, and how an alert's row renders in each state."""

from __future__ import annotations

from typing import Any

import pytest

from app.acks import ack_payload, alert_state, latest_with_key
from app.events import Event, KindRegistry
from app.render import Renderer, create_environment

ALERT = {
    "message": "ERROR payments: charge failed",
    "title": "Payment failures",
    "level": "critical",
    "tags": ["alert", "log.app"],
    "link": "https://dash.example.com/channels/log.app#line-e-7",
    "key": "alert.payment-failures.e-7",
}


def note(data: dict[str, Any], offset: int = 0) -> Event:
    return Event(f"n-{offset}", "ops.alerts", "notify", 0.0, data, seq=offset + 1, offset=offset)


@pytest.mark.parametrize(
    ("tags", "state"),
    [
        (None, None),
        (["deploy"], None),
        (["alert"], "open"),
        (["alert", "acknowledged"], "acknowledged"),
        (["alert", "acknowledged", "cleared"], "cleared"),
    ],
)
def test_an_alert_is_a_note_tagged_alert_and_its_tags_say_its_state(
    tags: list[str] | None, state: str | None
) -> None:
    assert alert_state({"message": "m", "tags": tags}) == state


def test_an_acknowledgement_is_the_same_alert_tagged() -> None:
    acked = ack_payload(ALERT)
    assert acked == {**ALERT, "tags": ["alert", "log.app", "acknowledged"]}
    assert alert_state(acked) == "acknowledged"
    assert ALERT["tags"] == ["alert", "log.app"]  # the alert itself is left as it was


def test_the_newest_note_with_the_key_is_found() -> None:
    other = {"message": "x", "key": "other"}
    events = [note(ALERT, 0), note(other, 1), note(ack_payload(ALERT), 2)]
    assert latest_with_key(events, ALERT["key"]) is events[2]
    assert latest_with_key(events, "missing") is None


def test_an_open_alert_row_has_an_acknowledge_form_and_a_closed_one_collapses() -> None:
    renderer = Renderer(create_environment(), KindRegistry())
    open_row = renderer.event(note(ALERT, 0))
    assert 'hx-post="/api/channels/ops.alerts/acks"' in open_row
    assert f'name="key" value="{ALERT["key"]}"' in open_row
    assert 'role="alert"' in open_row and "<details" not in open_row
    closed_row = renderer.event(note(ack_payload(ALERT), 1))
    assert "<details" in closed_row and "<summary" in closed_row
    assert "hx-post" not in closed_row and 'role="alert"' not in closed_row
    assert 'class="badge">acknowledged<' in closed_row
    plain = renderer.event(note({"message": "deploy done", "level": "info", "key": "d"}, 2))
    assert "hx-post" not in plain and "<details" not in plain


def test_a_page_snapshot_shows_only_the_acknowledgement_of_an_alert() -> None:
    renderer = Renderer(create_environment(), KindRegistry())
    html = renderer.snapshot("ops.alerts", "notify", [note(ALERT, 0), note(ack_payload(ALERT), 1)])
    assert html.count("Payment failures") == 1
    assert "<details" in html and "hx-post" not in html
