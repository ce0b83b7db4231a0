"""The q= and level= filters."""

from __future__ import annotations

import pytest

from app.events import Event, KindRegistry, PayloadError
from app.filters import EventFilter, compile_user_regex, parse_level

kinds = KindRegistry()


def log_event(line: str, level: str | None) -> Event:
    data = {"line": line, "file": "app.log", "level": level}
    return Event("e-1", "log.app", "log", 0.0, data, 1, 0)


def test_level_keeps_that_level_and_above() -> None:
    warn = EventFilter(kinds, level=parse_level("warning"))
    assert warn.accepts(log_event("x", "error"))
    assert warn.accepts(log_event("x", "warn"))
    assert not warn.accepts(log_event("x", "info"))
    assert not warn.accepts(log_event("x", None))
    chat = Event("e-2", "chat.lobby", "chat", 0.0, {"user": "a", "text": "b"}, 2, 0)
    assert warn.accepts(chat)


def test_q_matches_the_rendered_text() -> None:
    grep = EventFilter(kinds, pattern=compile_user_regex("time(out)?"))
    assert grep.accepts(log_event("upstream timeout", "error"))
    assert not grep.accepts(log_event("all good", "info"))


@pytest.mark.parametrize(("text", "field"), [("(", "q"), ("x" * 513, "q")])
def test_bad_regex_is_refused(text: str, field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        compile_user_regex(text)
    assert refused.value.field == field


def test_bad_level_is_refused() -> None:
    with pytest.raises(PayloadError):
        parse_level("loud")


def test_catastrophic_pattern_returns() -> None:
    """On a backtracking engine this search would outlive the test's timeout."""
    pattern = compile_user_regex("(a+)+$")
    assert pattern.search("a" * 100_000 + "!") is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("foo((", "missing ) in the filter: foo(( - a ( is never closed"),
        ("a)", "unexpected ) in the filter: a) - a ) closes nothing"),
        ("[a-", "missing ] in the filter: [a- - a [ is never closed"),
        ("(?<=a)b", "invalid perl operator in the filter: (?<= - RE2 has no look-ahead"),
        ("\\", "trailing \\ in the filter - the filter ends with a lone \\"),
        ("x{3,1}", "invalid repetition size in the filter: {3,1}"),
    ],
)
def test_a_bad_regex_is_explained_in_words(text: str, words: str) -> None:
    with pytest.raises(PayloadError) as refused:
        compile_user_regex(text)
    assert refused.value.message.startswith(words)
    assert "b'" not in refused.value.message and 'b"' not in refused.value.message


def test_field_filter_keeps_structured_lines_with_that_field() -> None:
    alice = EventFilter(kinds, fields=(("user", "alice"),))
    assert alice.active
    assert alice.accepts(log_event('{"msg": "hi", "user": "alice"}', "info"))
    assert alice.accepts(log_event("level=info msg=hi user=alice", "info"))
    assert not alice.accepts(log_event('{"msg": "hi", "user": "bob"}', "info"))
    assert not alice.accepts(log_event("user=alice in prose, not logfmt", "info"))


def test_field_filter_and_q_both_hold() -> None:
    both = EventFilter(kinds, pattern=compile_user_regex("paid"), fields=(("user", "alice"),))
    assert both.accepts(log_event('{"msg": "paid", "user": "alice"}', "info"))
    assert not both.accepts(log_event('{"msg": "refunded", "user": "alice"}', "info"))
