"""JSON and logfmt lines as fields: what the viewer shows as chips and ``field=`` compares."""

from __future__ import annotations

import pytest

from app.events import PayloadError
from app.linefields import (
    Structured,
    has_fields,
    line_fields,
    logfmt_pairs,
    parse_field_filter,
    structured,
)

# Real shapes: Go's log/slog JSON and text handlers, pino, structlog, logrus.
SLOG_JSON = (
    '{"time":"2026-12-01T13:58:04.1Z","level":"ERROR","msg":"charge failed","user":"alice",'
    '"order":77}'
)
SLOG_TEXT = 'time=2026-12-01T13:58:04.1Z level=WARN msg="disk almost full" path=/var free=3%'
PINO = (
    '{"level":30,"time":1796133484100,"pid":4242,"hostname":"web-1",'
    '"req":{"method":"GET","url":"/"},"msg":"request completed"}'
)
STRUCTLOG = (
    '{"event": "user logged in", "user": "bob", "timestamp": "2026-12-01T13:58:04Z",'
    ' "log.level": "info"}'
)
LOGRUS = 'time="2026-12-01T13:58:04Z" level=info msg="A walrus appears" animal=walrus size=10'


def test_a_json_line_has_message_level_and_the_rest_as_fields() -> None:
    assert structured(SLOG_JSON) == Structured(
        "json", "charge failed", "ERROR", (("user", "alice"), ("order", "77"))
    )


def test_nested_json_fields_are_dotted_and_numbers_are_text() -> None:
    found = structured(PINO)
    assert found is not None and found.message == "request completed" and found.level == "30"
    assert found.fields == (
        ("pid", "4242"),
        ("hostname", "web-1"),
        ("req.method", "GET"),
        ("req.url", "/"),
    )


def test_structlog_event_is_the_message() -> None:
    found = structured(STRUCTLOG)
    assert found is not None and found.message == "user logged in" and found.level == "info"
    assert found.fields == (("user", "bob"),)


@pytest.mark.parametrize("line", [SLOG_TEXT, LOGRUS])
def test_logfmt_lines_are_structured(line: str) -> None:
    found = structured(line)
    assert found is not None and found.format == "logfmt"
    assert found.message in ("disk almost full", "A walrus appears")
    assert found.level in ("WARN", "info")
    assert all(name not in ("time", "level", "msg") for name, _ in found.fields)


def test_quoted_logfmt_values_keep_escaped_quotes() -> None:
    assert logfmt_pairs(r'msg="say \"hi\"" n=1') == [("msg", 'say "hi"'), ("n", "1")]


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-01 13:58:04 ERROR retrying, attempt=2",
        "x=1",  # one pair is not a record
        'msg="unclosed quote n=1',
        "[1, 2, 3]",
        "{not json",
        "plain text without an equals sign",
        "",
    ],
)
def test_prose_and_broken_lines_are_not_structured(line: str) -> None:
    assert structured(line) is None and line_fields(line) is None


def test_json_values_of_every_type_are_text() -> None:
    fields = line_fields('{"a": true, "b": null, "c": 1.5, "d": [1, "x"], "e": {}}')
    assert fields == [("a", "true"), ("b", "null"), ("c", "1.5"), ("d", '[1,"x"]'), ("e", "{}")]


def test_deep_json_stays_json_text_past_three_levels() -> None:
    fields = line_fields('{"a": {"b": {"c": {"d": {"e": 1}}}}}')
    assert fields == [("a.b.c.d", '{"e":1}')]


def test_field_filters_match_whole_values() -> None:
    assert has_fields(SLOG_JSON, (("user", "alice"), ("order", "77")))
    assert not has_fields(SLOG_JSON, (("user", "ali"),))
    assert has_fields(PINO, (("req.method", "GET"),))
    assert has_fields(SLOG_TEXT, (("msg", "disk almost full"),))
    assert not has_fields("user=alice said hi", (("user", "alice"),))


@pytest.mark.parametrize("text", ["user", "=alice", "a b=c", "x" * 129 + "=1", "a=" + "v" * 1025])
def test_a_bad_field_filter_is_refused_in_words(text: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_field_filter(text)
    assert refused.value.field == "field"
    assert "b'" not in refused.value.message


def test_a_field_filter_may_ask_for_an_empty_value_or_one_with_equals() -> None:
    assert parse_field_filter("user=") == ("user", "")
    assert parse_field_filter("query=a=b") == ("query", "a=b")
