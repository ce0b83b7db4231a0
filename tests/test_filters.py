"""The q= and level= filters."""

from __future__ import annotations

import pytest

from app.events import Event, KindRegistry, PayloadError
from app.filters import (
    EventFilter,
    PatternSet,
    SharedFilter,
    compile_user_regex,
    filter_key,
    parse_level,
    pattern_key,
)

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


def _event(text: str, offset: int) -> Event:
    data = {"line": text, "file": "app.log"}
    return Event(f"e-{offset}", "log.app", "log", 1.7e9, data, offset, offset)


def test_a_pattern_set_answers_as_each_pattern_would_alone() -> None:
    texts = ["disk full", "DISK ok", "cpu 93%", "", "line (a)", "a+b"]
    patterns = ["disk", "(?i)disk", "^cpu", r"\d+%", "x*", r"\(a\)$", r"a\+b|nope"]
    live = list(patterns)
    patterns_set = PatternSet(lambda: live)
    patterns_set.stale()
    for offset, text in enumerate(texts):
        event = _event(text, offset)
        for pattern in patterns:
            alone = compile_user_regex(pattern).search(text) is not None
            assert patterns_set.matches(pattern, event, text) is alone, (pattern, text)
    assert patterns_set.matches("absent", _event("absent", 99), "absent") is None

    live.append("absent")  # a pattern joins: in the set from the next event on
    patterns_set.stale()
    assert patterns_set.matches("absent", _event("absent", 100), "absent") is True


def test_a_shared_filter_keeps_what_its_filter_keeps_once_per_event() -> None:
    kinds = KindRegistry()
    live = ["disk"]
    patterns_set = PatternSet(lambda: live)
    patterns_set.stale()
    event_filter = EventFilter(kinds, compile_user_regex("disk"), "warn")
    encoded: list[str] = []

    def encode(event: Event) -> bytes:
        encoded.append(event.id)
        return event.id.encode()

    shared = SharedFilter(event_filter, encode, patterns_set)
    lines = ["ERROR disk full", "INFO disk ok", "ERROR cpu hot"]
    events = [_event(line, offset) for offset, line in enumerate(lines)]
    for event in events:
        event.data["level"] = "error" if event.data["line"].startswith("ERROR") else "info"
    frames = [shared.frame(event) for event in events for _viewer in range(3)]
    assert frames == [b"e-0"] * 3 + [b""] * 6
    assert encoded == ["e-0"], "encoded once, for the one event kept"
    assert [event_filter.accepts(event) for event in events] == [True, False, False]


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


def test_shared_filters_tell_case_and_fields_apart() -> None:
    sensitive = EventFilter(kinds, compile_user_regex("disk"))
    insensitive = EventFilter(kinds, compile_user_regex("disk", ignore_case=True))
    alice = EventFilter(kinds, compile_user_regex("disk"), fields=(("user", "alice"),))
    keys = {filter_key("html", f) for f in (sensitive, insensitive, alice)}
    assert len(keys) == 3
    live = [key[1] for key in keys if key[1] is not None]
    patterns_set = PatternSet(lambda: live)
    patterns_set.stale()
    event = _event("DISK full", 1)
    shouting = pattern_key(insensitive.pattern)
    assert patterns_set.matches(shouting, event, "DISK full") is True
    assert patterns_set.matches(pattern_key(sensitive.pattern), event, "DISK full") is False
    assert insensitive.accepts(event, patterns_set) and not sensitive.accepts(event, patterns_set)
