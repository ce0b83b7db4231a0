"""Query numbers and JSON bodies: hostile input is a PayloadError (a 400), never a crash."""

from __future__ import annotations

import pytest

from app.events import PayloadError
from app.web.params import decode_json, whole_number


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
