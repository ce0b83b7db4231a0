"""Line splitting, cutting, decoding and level detection (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sources.logtail.lines import (
    CUT_MARKER,
    LineSplitter,
    RawLine,
    backfill_offset,
    char_boundary,
    line_text,
    strip_ansi,
)

line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
streams = st.lists(st.tuples(line_bytes, st.sampled_from([b"\n", b"\r\n"])), max_size=20).map(
    lambda pairs: b"".join(line + end for line, end in pairs)
)


def expected_lines(data: bytes, max_line_bytes: int) -> list[RawLine]:
    """The reference: split on LF, drop a CR before it, cut long lines on a character boundary."""
    lines = []
    for line in data.split(b"\n")[:-1]:
        line = line.removesuffix(b"\r")
        if len(line) > max_line_bytes:
            kept = line[: char_boundary(line[:max_line_bytes])]
            lines.append(RawLine(kept, len(line) - len(kept)))
        else:
            lines.append(RawLine(line))
    return lines


def feed_in_chunks(splitter: LineSplitter, data: bytes, cuts: list[int]) -> list[RawLine]:
    lines = []
    start = 0
    for cut in sorted(cuts):
        lines += splitter.feed(data[start:cut])
        start = cut
    return lines + splitter.feed(data[start:])


@given(
    data=streams.flatmap(lambda d: st.tuples(st.just(d), st.binary(max_size=10))),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=30),
    max_line_bytes=st.integers(min_value=1, max_value=50),
)
def test_chunk_boundaries_never_change_the_lines(data, cuts, max_line_bytes):
    stream, unfinished = data
    unfinished = unfinished.replace(b"\n", b"")
    whole = stream + unfinished
    splitter = LineSplitter(max_line_bytes)
    cuts = [c for c in cuts if c <= len(whole)]
    assert feed_in_chunks(splitter, whole, cuts) == expected_lines(stream, max_line_bytes)
    rest = splitter.flush()
    if unfinished:
        assert rest is not None
        assert rest.data + b"?" * rest.cut == unfinished[: len(rest.data)] + b"?" * rest.cut
        assert len(rest.data) + rest.cut == len(unfinished)
    else:
        assert rest is None
    assert not splitter.pending


@given(st.lists(st.binary(max_size=20), max_size=20))
def test_any_bytes_give_text_without_escape_codes(chunks):
    splitter = LineSplitter(16)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    for line in [*lines, splitter.flush() or RawLine(b"")]:
        text = line_text(line)
        assert "\x1b" not in text
        assert "\n" not in text


def test_crlf_split_between_chunks_is_one_line_end():
    splitter = LineSplitter()
    assert splitter.feed(b"one\r") == []
    assert splitter.feed(b"\ntwo\r\n") == [RawLine(b"one"), RawLine(b"two")]


def test_a_lone_cr_inside_a_line_is_kept():
    assert LineSplitter().feed(b"a\rb\n") == [RawLine(b"a\rb")]


def test_a_huge_line_is_cut_and_not_held_in_memory():
    splitter = LineSplitter(max_line_bytes=10)
    for _ in range(1000):
        splitter.feed(b"x" * 1000)
        assert len(splitter._held) <= 10
    (line,) = splitter.feed(b"\r\nnext")
    assert line == RawLine(b"x" * 10, 1_000_000 - 10)
    assert line_text(line) == "x" * 10 + CUT_MARKER.format(cut=999_990)
    assert splitter.flush() == RawLine(b"next")


def test_a_cut_never_splits_a_character():
    (line,) = LineSplitter(max_line_bytes=5).feed("aaaa€€\n".encode())
    assert line == RawLine(b"aaaa", 6)
    assert line_text(line) == "aaaa" + CUT_MARKER.format(cut=6)


@pytest.mark.parametrize(
    ("data", "length"),
    [(b"abc", 3), ("ab€".encode(), 5), ("ab€".encode()[:-1], 2), ("𝄞".encode()[:3], 0), (b"", 0)],
)
def test_char_boundary(data, length):
    assert char_boundary(data) == length


def test_invalid_utf8_is_replaced():
    assert line_text(RawLine(b"bad \xff\xfe \xc3(")) == "bad \ufffd\ufffd \ufffd("


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("\x1b[1;31mERROR\x1b[0m boom", "ERROR boom"),
        ("\x1b[38;5;196mred\x1b[m", "red"),
        ("\x1b]0;title\x07after", "after"),
        ("\x1b]8;;https://x.invalid\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1b[2K\x1b[1Gprogress", "progress"),
        ("\x9b31mC1 csi", "C1 csi"),
        ("stray \x1b", "stray "),
        ("nul\x00byte", "nulbyte"),
        ("plain <b>html</b> & text", "plain <b>html</b> & text"),
    ],
)
def test_strip_ansi(raw, text):
    assert strip_ansi(raw) == text


@given(
    st.lists(st.binary(max_size=8).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    st.booleans(),
    st.integers(min_value=0, max_value=40),
)
def test_backfill_offset_on_the_whole_file(lines, terminated, count):
    data = b"\n".join(lines) + (b"\n" if terminated and lines else b"")
    offset = backfill_offset(data, 0, count)
    assert offset is not None
    assert split(data[offset:]) == (split(data)[-count:] if count else [])


def split(data: bytes) -> list[bytes]:
    """The lines of a file, an unterminated last one included."""
    lines = data.split(b"\n")
    if not data or data.endswith(b"\n"):
        lines.pop()
    return lines


def test_backfill_offset_asks_for_more_when_the_block_is_short():
    assert backfill_offset(b"c\nd\n", 100, 5) is None
    assert backfill_offset(b"b\nc\nd\n", 100, 2) == 102
