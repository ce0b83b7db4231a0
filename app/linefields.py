"""The fields of a structured log line: a JSON object or logfmt ``key=value`` pairs.

Pure code, no I/O. The renderer shows a structured line as its message, its
level and the other fields as chips; ``field=NAME=VALUE`` filters compare a
line's fields (:func:`line_fields`). Lines are parsed where they are shown or
filtered, not when they are published: the payload stays the line, so lines
retained before this code, or published by a plugin, are structured too, and
a tail nobody watches parses nothing.

Deliberate oddities (do not "fix"):
- logfmt is recognised only when the *whole* line is ``key=value`` pairs (at
  least two): prose that mentions ``a=b`` is not a record.
- Nested JSON objects become dotted names (``http.status``), up to
  ``MAX_DEPTH``; arrays and deeper objects stay JSON text. Every value is
  compared and shown as text: a JSON ``500`` is ``500``, ``true`` is
  ``true``, ``null`` is ``null``.
- A line's time field is left out of the chips: the row's time column shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from app.events import PayloadError

MESSAGE_KEYS = ("msg", "message", "event", "MESSAGE")
LEVEL_KEYS = ("level", "lvl", "severity", "levelname", "log.level")
TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "t", "asctime", "date")
MAX_DEPTH = 3
MAX_FIELD_NAME = 128
MAX_FIELD_VALUE = 1024
_KEY = r'[^\s="]+'
_VALUE = r'"(?:[^"\\]|\\.)*"|[^\s"]*'
_LOGFMT_LINE = re.compile(rf"\s*{_KEY}=(?:{_VALUE})(?:\s+{_KEY}=(?:{_VALUE}))+\s*")
_LOGFMT_PAIR = re.compile(rf"({_KEY})=({_VALUE})")
_LOGFMT_ESCAPES = re.compile(r"\\(.)")
_FIELD_NAME = re.compile(r"[^\s=\"]+")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Structured:
    """A structured line as a row shows it: ``fields`` are the chips, in the line's order."""

    format: str  # "json" or "logfmt"
    message: str | None
    level: str | None
    fields: tuple[tuple[str, str], ...]


def json_record(line: str) -> dict[str, Any] | None:
    """The object a JSON line holds; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = _decode(line)
    except msgspec.DecodeError:
        return None
    return record if isinstance(record, dict) else None


def logfmt_pairs(line: str) -> list[tuple[str, str]] | None:
    """The ``key=value`` pairs of a logfmt line, or None when the line is not wholly logfmt.

    >>> logfmt_pairs('level=info msg="user signed in" user=alice')
    [('level', 'info'), ('msg', 'user signed in'), ('user', 'alice')]
    >>> logfmt_pairs("retrying in 5s, attempt=2") is None
    True
    """
    if "=" not in line or _LOGFMT_LINE.fullmatch(line) is None:
        return None
    return [
        (key, _LOGFMT_ESCAPES.sub(r"\1", value[1:-1]) if value.startswith('"') else value)
        for key, value in _LOGFMT_PAIR.findall(line)
    ]


def line_fields(line: str) -> list[tuple[str, str]] | None:
    """Every field of a JSON or logfmt line as (dotted name, text), or None for other lines.

    >>> line_fields('{"msg": "ok", "http": {"status": 200}, "tags": ["a"]}')
    [('msg', 'ok'), ('http.status', '200'), ('tags', '["a"]')]
    """
    record = json_record(line)
    if record is not None:
        return list(_flatten(record, "", 0))
    return logfmt_pairs(line)


def structured(line: str) -> Structured | None:
    """``line`` split into message, level and the remaining fields; None when it is plain text.

    >>> structured('ts=2026-12-01T13:58:04Z level=warn msg="disk low" free=3%')
    Structured(format='logfmt', message='disk low', level='warn', fields=(('free', '3%'),))
    """
    fields = line_fields(line)
    if fields is None:
        return None
    names = [name for name, _ in fields]
    message_key = next((key for key in MESSAGE_KEYS if key in names), None)
    level_key = next((key for key in LEVEL_KEYS if key in names), None)
    time_key = next((key for key in TIME_KEYS if key in names), None)
    values = dict(fields)
    shown = tuple((n, v) for n, v in fields if n not in (message_key, level_key, time_key))
    return Structured(
        format="json" if line.startswith("{") else "logfmt",
        message=values[message_key] if message_key else None,
        level=values[level_key] if level_key else None,
        fields=shown,
    )


def parse_field_filter(text: str, *, field: str = "field") -> tuple[str, str]:
    """``NAME=VALUE`` (a ``field=`` parameter) as (name, value); anything else is a PayloadError.

    >>> parse_field_filter("user=alice"), parse_field_filter("http.status=500")
    (('user', 'alice'), ('http.status', '500'))
    """
    name, equals, value = text.partition("=")
    if not equals or not _FIELD_NAME.fullmatch(name):
        raise PayloadError(field, f"expected NAME=VALUE such as user=alice, got {text[:80]!r}")
    if len(name) > MAX_FIELD_NAME or len(value) > MAX_FIELD_VALUE:
        limits = f"{MAX_FIELD_NAME} characters, values {MAX_FIELD_VALUE}"
        raise PayloadError(field, f"names are at most {limits}")
    return name, value


def has_fields(line: str, wanted: tuple[tuple[str, str], ...]) -> bool:
    """True when ``line`` is structured and has each (name, value) of ``wanted``."""
    fields = line_fields(line)
    if fields is None:
        return False
    present = set(fields)
    return all(pair in present for pair in wanted)


def _flatten(record: dict[str, Any], prefix: str, depth: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            out.extend(_flatten(value, f"{name}.", depth + 1))
        else:
            out.append((name, _text(value)))
    return out


def _text(value: Any) -> str:
    """A JSON value as the text a chip shows and a filter compares."""
    if isinstance(value, str):
        return value
    return _encode(value).decode()
