"""Durations in config values: "45s", "30m", "12h", "7d" and plain seconds."""

from __future__ import annotations

import pytest

from app.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("1.5h", 5400.0),
        (" 10m ", 600.0),
        ("90", 90.0),
        ("0", 0.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "12x", "12 h", "-5s", "1e3", "nan", "inf", "12hh"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), True])
def test_parse_duration_refuses_numbers(value: float) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)
