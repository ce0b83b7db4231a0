"""The format seam: each format encodes an event, a snapshot, a gap, a heartbeat, a status."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.events import Event, KindRegistry
from app.filters import compile_user_regex
from app.render import Renderer, create_environment
from app.web.streaming.format import (
    FilteredHtmlFormat,
    HtmlFormat,
    JsonFormat,
    stream_format,
)
from tests.support.sse_parser import SSEParser


@pytest.fixture
def renderer() -> Renderer:
    kinds = KindRegistry()
    return Renderer(create_environment(kinds), kinds)


def notify(seq: int, message: str) -> Event:
    data = {"message": message, "level": "info"}
    return Event(f"e-{seq}", "ops.n", "notify", 1.0, data, seq=seq, offset=seq)


def test_each_format_name_gets_its_format(renderer: Renderer) -> None:
    failures: Counter[str] = Counter()
    assert isinstance(stream_format("json", None, renderer, failures), JsonFormat)
    assert type(stream_format("html", None, renderer, failures)) is HtmlFormat
    highlight = compile_user_regex("x")
    assert isinstance(stream_format("html", highlight, renderer, failures), FilteredHtmlFormat)
    with pytest.raises(ValueError, match="xml"):
        stream_format("xml", None, renderer, failures)


def test_json_frames_are_shared_and_the_gap_names_its_channels() -> None:
    fmt = JsonFormat()
    event = notify(1, "hi")
    assert fmt.event(event) is fmt.event(event), "encoded once, cached on the event"
    (parsed,) = SSEParser().feed(fmt.event(event))
    assert (parsed.id, parsed.event, json.loads(parsed.data)["data"]["message"]) == (
        "e-1",
        "ops.n",
        "hi",
    )
    (gap,) = SSEParser().feed(fmt.gap(["ops.n"], "e-0"))
    assert gap.event == "gap" and json.loads(gap.data) == {"channels": ["ops.n"]}
    assert gap.id == "e-0", "a gap carries the cursor the replay after it starts from"
    assert fmt.heartbeat.startswith(b": ping")
    assert fmt.opening(1500).startswith(b"retry: 1500")
    assert fmt.shared and not fmt.sends_status


def test_html_opens_with_a_status_fragment_and_its_snapshot_carries_the_cursor(
    renderer: Renderer,
) -> None:
    fmt = HtmlFormat(renderer, Counter())
    opening = SSEParser()
    events = opening.feed(fmt.opening(2000))
    assert [e.event for e in events] == ["_status"] and fmt.sends_status
    parts = [("ops.n", "notify", [notify(1, "a")]), ("ops.m", "notify", [notify(2, "b")])]
    frames = SSEParser().feed(fmt.snapshot(parts, "e-2"))
    assert [(f.event, f.id) for f in frames] == [("ops.n", ""), ("ops.m", "e-2")]


def test_filtered_html_marks_the_pattern_in_a_frame_of_its_own(renderer: Renderer) -> None:
    fmt = FilteredHtmlFormat(renderer, Counter(), compile_user_regex("needle"))
    event = notify(1, "a needle here")
    (parsed,) = SSEParser().feed(fmt.event(event))
    assert "<mark>needle</mark>" in parsed.data
    assert "html" not in event.frames and not fmt.shared
