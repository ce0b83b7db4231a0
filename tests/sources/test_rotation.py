"""Rotation and truncation decisions (pure functions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.sources.logtail.rotation import (
    MATCH_BYTES,
    FileId,
    PathState,
    after_check,
    copy_matches,
    keep_tail,
    match_window,
    path_state,
    rotated_names,
)

HELD = FileId(1, 100)


def test_path_state():
    assert path_state(HELD, FileId(1, 100)) is PathState.SAME
    assert path_state(HELD, FileId(1, 101)) is PathState.REPLACED
    assert path_state(HELD, FileId(2, 100)) is PathState.REPLACED
    assert path_state(HELD, None) is PathState.MISSING


def test_after_check():
    assert after_check(b"", b"new") == b"new"
    assert after_check(b"end\n", b"end\nnew") == b"new"
    assert after_check(b"end\n", b"end\n") == b""
    assert after_check(b"end\n", b"en") is None  # shrank below our position
    assert after_check(b"end\n", b"xxx\nnew") is None  # truncated and refilled past us


def test_rotated_names():
    entries = [
        ("app.log", 9.0),
        ("app.log.1", 5.0),
        ("app.log-20240101", 6.0),
        ("app.log_old", 1.0),
        ("app.log.2.gz", 7.0),
        ("app.logger", 8.0),
        ("other.log.1", 9.0),
    ]
    assert rotated_names("app.log", entries) == ["app.log-20240101", "app.log.1", "app.log_old"]


content = st.binary(min_size=1, max_size=3 * MATCH_BYTES)


@given(content, st.data())
def test_the_copy_of_what_we_read_matches(data, draw):
    position = draw.draw(st.integers(min_value=1, max_value=len(data)))
    copy_size = draw.draw(st.integers(min_value=1, max_value=len(data)))
    history = keep_tail(b"", data[:position])
    window = match_window(position, len(history), copy_size)
    assert window is not None
    start, end = window
    assert 0 <= start < end <= min(position, copy_size)
    assert copy_matches(history, position, start, data[start:end])


@given(content, st.integers(min_value=1))
def test_another_file_does_not_match(data, seed):
    position = len(data)
    history = keep_tail(b"", data)
    other = bytes((byte + 1) % 256 for byte in data)
    start, end = match_window(position, len(history), len(other)) or (0, 0)
    assert not copy_matches(history, position, start, other[start:end])


def test_nothing_to_compare_before_the_first_byte():
    assert match_window(position=0, known=0, copy_size=100) is None
    assert match_window(position=100, known=100, copy_size=0) is None


def test_keep_tail_keeps_the_last_bytes():
    assert keep_tail(b"abc", b"def") == b"abcdef"
    assert keep_tail(b"a" * MATCH_BYTES, b"b") == b"a" * (MATCH_BYTES - 1) + b"b"
    assert keep_tail(b"abc", b"x" * (MATCH_BYTES + 5)) == b"x" * MATCH_BYTES
