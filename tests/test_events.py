"""Channel names, patterns, ids and payload schemas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.events import (
    KindRegistry,
    PayloadError,
    check_cursor_text,
    format_event_id,
    parse_event_id,
    pattern_matches,
    validate_channel,
    validate_pattern,
)

segment = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)


@pytest.mark.parametrize("name", ["chat.lobby", "log.nginx", "ticker", "ops.deploys", "a-1.b_2"])
def test_valid_channel_names(name: str) -> None:
    assert validate_channel(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Chat",
        "a..b",
        ".a",
        "a.",
        "-a",
        "a b",
        "a\nb",
        "x" * 101,
        "gap",
        "message",
        "error",
        "open",
        "close",
        "log.*",
    ],
)
def test_invalid_channel_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(PayloadError) as refused:
        validate_channel(name)
    assert refused.value.field == "channel"


def test_patterns_allow_one_segment_wildcards() -> None:
    assert validate_pattern("log.*") == "log.*"
    assert pattern_matches("log.*", "log.nginx")
    assert not pattern_matches("log.*", "log.a.b")
    assert not pattern_matches("log.*", "log")
    assert pattern_matches("*.errors", "app.errors")
    assert pattern_matches("chat.lobby", "chat.lobby")
    with pytest.raises(PayloadError):
        validate_pattern("log.**")


@given(st.lists(segment, min_size=1, max_size=4), st.data())
def test_a_pattern_with_one_star_matches_exactly_that_shape(parts: list[str], data) -> None:
    channel = ".".join(parts)
    star = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    pattern = ".".join("*" if i == star else p for i, p in enumerate(parts))
    assert pattern_matches(pattern, channel)
    assert not pattern_matches(pattern, channel + ".extra")


def test_ids_round_trip_and_foreign_ids_are_unknown() -> None:
    assert parse_event_id(format_event_id("ab12", 42)) == ("ab12", 42)
    for foreign in ["", "42", "ab12-", "-3", "ab 1-2", "ab12-3-4", "x" * 30 + "-1"]:
        assert parse_event_id(foreign) is None


def test_cursor_text_refuses_what_no_server_sent() -> None:
    assert check_cursor_text("ab12-3") == "ab12-3"
    for hostile in ["x" * 65, "a\x01b", "a b", "é-1"]:
        with pytest.raises(PayloadError):
            check_cursor_text(hostile)


kinds = KindRegistry()


def test_notify_defaults_level_and_refuses_unknown_fields() -> None:
    notify = kinds.get("notify")
    assert notify.validate({"message": "backup done"}) == {
        "message": "backup done",
        "level": "info",
    }
    with pytest.raises(PayloadError) as refused:
        notify.validate({"message": "x", "colour": "red"})
    assert refused.value.field == "colour"
    with pytest.raises(PayloadError) as refused:
        notify.validate({"message": "x", "level": "loud"})
    assert refused.value.field == "level"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user": "", "text": "hi"}, "user"),
        ({"user": "u" * 33, "text": "hi"}, "user"),
        ({"user": "ann", "text": "t" * 2001}, "text"),
        ({"user": "ann"}, "text"),
        ({"user": 3, "text": "hi"}, "user"),
    ],
)
def test_chat_limits_name_the_field(payload: dict, field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        kinds.get("chat").validate(payload)
    assert refused.value.field == field


def test_log_and_ticker_refuse_external_publishing() -> None:
    assert not kinds.get("log").external_publish
    assert not kinds.get("ticker").external_publish
    assert kinds.get("ticker").view.latest_value_key == "symbol"


@pytest.mark.parametrize(
    ("payload", "stored"),
    [
        ({"level": "warn"}, {"level": "warning"}),
        ({"level": "warning"}, {"level": "warning"}),
        ({"level": "critical"}, {"level": "critical"}),
        ({"priority": 5}, {"level": "critical", "priority": 5}),
        ({"priority": "urgent"}, {"level": "critical", "priority": 5}),
        ({"priority": "High"}, {"level": "warning", "priority": 4}),
        ({"priority": "4"}, {"level": "warning", "priority": 4}),
        ({"priority": 3}, {"level": "info", "priority": 3}),
        ({"priority": "default"}, {"level": "info", "priority": 3}),
        ({"priority": "low"}, {"level": "info", "priority": 2}),
        ({"priority": 1}, {"level": "info", "priority": 1}),
        ({"priority": 5, "level": "success"}, {"level": "success", "priority": 5}),
    ],
)
def test_notify_levels_and_priorities_are_stored_canonically(payload: dict, stored: dict) -> None:
    assert kinds.get("notify").validate({"message": "x", **payload}) == {"message": "x", **stored}


@pytest.mark.parametrize("priority", [0, 6, "loud", "", True, 2.5, [3]])
def test_a_bad_priority_is_refused_naming_it(priority: object) -> None:
    with pytest.raises(PayloadError) as refused:
        kinds.get("notify").validate({"message": "x", "priority": priority})
    assert refused.value.field == "priority"


def test_critical_notifications_pass_an_error_level_filter() -> None:
    level = kinds.get("notify").level
    assert level is not None
    assert level({"level": "critical"}) == "error"
    assert level({"level": "warning"}) == "warn"
