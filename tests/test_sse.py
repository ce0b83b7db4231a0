"""SSE encoding: what a spec-compliant parser reads back is exactly what we encoded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import sse
from tests.support.sse_parser import SSEParser

line_ends = st.sampled_from(["\r", "\n", "\r\n"])
text_with_line_ends = st.lists(st.one_of(st.text(), line_ends)).map("".join)


def normalise(text: str) -> str:
    """What SSE can carry: every line end arrives as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@given(data=text_with_line_ends, chunk=st.integers(min_value=1, max_value=7))
def test_any_payload_round_trips_as_exactly_one_event(data: str, chunk: int) -> None:
    frame = sse.encode_event(data, event="chat.lobby", id="e1-5")
    parser = SSEParser()
    for start in range(0, len(frame), chunk):
        parser.feed(frame[start : start + chunk])
    assert len(parser.events) == 1
    event = parser.events[0]
    assert event.data == normalise(data)
    assert event.event == "chat.lobby"
    assert event.id == "e1-5"


def test_multiline_data_becomes_one_data_field_per_line() -> None:
    assert sse.encode_event("a\r\nb\rc\nd", event="x") == (
        b"event: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_ids_and_event_names_with_line_ends_are_refused(bad: str) -> None:
    with pytest.raises(sse.FieldError):
        sse.encode_event("x", id=bad)
    with pytest.raises(sse.FieldError):
        sse.encode_event("x", event=bad)


def test_retry_and_comment() -> None:
    parser = SSEParser()
    parser.feed(sse.encode_retry(2500) + sse.encode_comment("ping"))
    assert parser.retry == 2500
    assert parser.comments == ["ping"]
    assert parser.events == []


def test_retry_and_heartbeat_add_no_message_of_their_own() -> None:
    """Only blank lines end messages: httpx-sse yields one per blank line, even empty (#35)."""
    stream = (
        sse.encode_retry(2500)
        + sse.encode_comment("ping")
        + sse.encode_event("hello", event="c", id="e-1")
        + sse.encode_comment("ping")
    )
    assert stream.count(b"\n\n") == 1
    parser = SSEParser()
    parser.feed(stream)
    assert (parser.retry, parser.comments) == (2500, ["ping", "ping"])
    assert [(e.id, e.data) for e in parser.events] == [("e-1", "hello")]


def test_json_fast_path_matches_the_general_encoder() -> None:
    body = b'{"a":"line\\nbreak"}'
    assert sse.encode_json_event(body, event="c", id="e-1") == sse.encode_event(
        body.decode(), event="c", id="e-1"
    )
