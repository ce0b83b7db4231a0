"""Query numbers and JSON bodies: hostile input is a PayloadError (a 400), never a crash."""

from __future__ import annotations

import pytest

from app.events import PayloadError
from app.web.params import check_known, decode_json, parse_since, whole_number


@pytest.mark.parametrize("text", ["²", "\u0661", "-1", "+1", " 1", "1.0", "", "1" * 5000, "0x10"])
def test_whole_number_refuses(text: str) -> None:
    with pytest.raises(PayloadError, match="limit"):
        whole_number(text, "limit", 0, 1000)


def test_whole_number_range() -> None:
    assert whole_number("0", "history", 0, 10) == 0
    assert whole_number("10", "history", 0, 10) == 10
    with pytest.raises(PayloadError):
        whole_number("11", "history", 0, 10)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"message":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
        (b'{"message":"\xff"}', "UTF-8"),
        (b'{"message":', "not valid JSON"),
    ],
)
def test_decode_json_refuses(raw: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_json(raw, "body")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1700000000", 1700000000.0), ("1700000000.5", 1700000000.5), ("0", 0.0), ("10m", 400.0),
     ("1h", 1000.0 - 3600)],
)  # fmt: skip
def test_parse_since_takes_a_unix_time_or_a_duration_ago(text: str, seconds: float) -> None:
    assert parse_since(text, now=1000.0) == seconds


@pytest.mark.parametrize(
    "text", ["", " ", "-5", "nan", "inf", "yesterday", "10x", "²", " 5", "1e999"]
)
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_since(text, now=1000.0)
    assert refused.value.field == "since"


def test_check_known_names_every_unknown_parameter() -> None:
    check_known(["limit", "after"], frozenset({"limit", "after", "since"}))
    with pytest.raises(PayloadError) as refused:
        check_known(["limit", "sinse", "Limit"], frozenset({"limit", "since"}))
    assert refused.value.field == "Limit, sinse"
