"""What a log line says about itself: when it was written and how severe it is.

Pure code, no I/O: the tailer calls :func:`line_facts` once per line it publishes.

Deliberate oddities (do not "fix"):
- A timestamp is looked for where each format puts it (the start of the line,
  after a syslog ``<PRI>``, in the ``[...]`` of an access log, in a JSON
  line's time field, in a logfmt line's ``time=``/``ts=``), never anywhere
  in the text: a date quoted in a message is not the line's time.
- Timestamps without a zone (Python logging, dpkg, RFC 3164 syslog, klog) are
  local time of the server, as the program that wrote them used it. RFC 3164
  and klog carry no year: the year is the one that puts the line closest
  before the read time (a ``Dec 31`` line read on 1 January is last year's).
- Levels: what a format states outright (JSON field, syslog PRI, klog letter,
  logfmt ``level=``, an access log's HTTP status, a dpkg action) wins over
  words in the text; a level word in capitals wins over a lowercase
  ``error``/``warning`` in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from app.linefields import LEVEL_KEYS as _JSON_LEVEL_KEYS
from app.linefields import TIME_KEYS as _JSON_TIME_KEYS
from app.linefields import json_record, logfmt_pairs

_LOGFMT_LEVEL = re.compile(r'(?:^|\s)(?:level|lvl|severity)="?([A-Za-z]+)')
_WORD_LEVEL = re.compile(
    r"\b(FATAL|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|INFO|NOTICE|DEBUG|TRACE)\b"
    r"|\[(?:[a-z_]+:)?(fatal|crit|alert|emerg|error|warn|warning|info|notice|debug)\]"
)
_LOGFMT_KEYS = ("level=", "lvl=", "severity=")
_PROSE_WORDS = ("error", "fatal", "panic", "warn")
_PROSE_LEVEL = re.compile(r"\b(error|fatal|panic|warning|warn)\b")
_PRI = re.compile(r"<(\d{1,3})>")
_KLOG = re.compile(r"([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\s+\d+ ")
_HTTP_STATUS = re.compile(r':\d\d [+-]\d{4}\] "(?:[^"\\]|\\.)*" ([1-5]\d\d) ')
_DPKG = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    r"(?:status|startup|install|upgrade|configure|trigproc|remove|purge|conffile) "
)
_ISO = re.compile(
    r"\[?(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r" ?(Z|[+-]\d\d(?::?\d\d)?)?(?![\d:])"
)
_RFC5424 = re.compile(r"<\d{1,3}>\d{1,2} ")
_RFC3164 = re.compile(r"(?:<\d{1,3}>)?([A-Z][a-z]{2}) ([ \d]?\d) (\d\d):(\d\d):(\d\d)(?![\d:])")
_CLF = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d\d)(\d\d)\]")
_LOGFMT_TIME_HINTS = ("time=", "ts=", "t=", "timestamp=", "date=")  # else no logfmt parse
_CLF_SEARCH_CHARS = 200
_HTTP_SEARCH_CHARS = 8192
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_FUTURE_SLACK = timedelta(days=1)
_HALF_YEAR_S = 183 * 86400
_LATEST_TS = 1e11
_LEVELS = {
    "fatal": "error",
    "panic": "error",
    "emerg": "error",
    "emergency": "error",
    "alert": "error",
    "critical": "error",
    "crit": "error",
    "error": "error",
    "err": "error",
    "warning": "warn",
    "warn": "warn",
    "info": "info",
    "information": "info",
    "notice": "info",
    "debug": "debug",
    "trace": "debug",
}
_PINO_LEVELS = ((50, "error"), (40, "warn"), (30, "info"), (0, "debug"))
_SYSLOG_SEVERITY = ("error",) * 4 + ("warn", "info", "info", "debug")


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What a line states: its own time (UNIX seconds) and its level, each None when silent."""

    ts: float | None
    level: str | None


def line_facts(line: str, read_at: float, tz: tzinfo | None = None) -> LineFacts:
    """The time and level of ``line``, decoding a JSON line only once.

    ``read_at`` (UNIX seconds) dates formats without a year; ``tz`` is the zone
    of timestamps without one (None: the server's local zone).
    """
    record = json_record(line)
    return LineFacts(line_time(line, read_at, tz, record), detect_level(line, record))


# -- levels ------------------------------------------------------------------


def detect_level(line: str, record: dict[str, Any] | None = None) -> str | None:
    """The severity a line states, on the ``error|warn|info|debug`` scale, or None.

    >>> detect_level('{"level": "warning", "msg": "x"}'), detect_level("<11>Dec  1 x")
    ('warn', 'error')
    >>> detect_level("E1201 13:58:04.123456    1234 kubelet.go:2855] x"), detect_level("fine")
    ('error', None)
    """
    if record is None and line.startswith("{"):
        record = json_record(line)
    return _stated_level(line, record) or _word_level(line)


def _stated_level(line: str, record: dict[str, Any] | None) -> str | None:
    """A level the format declares: JSON field, syslog PRI, klog letter, logfmt, HTTP, dpkg."""
    if record is not None:
        return _json_level(record)
    if line.startswith("<") and (pri := _PRI.match(line)) is not None:
        return _SYSLOG_SEVERITY[int(pri.group(1)) % 8]
    if (klog := _KLOG.match(line)) is not None:
        return {"I": "info", "W": "warn"}.get(klog.group(1), "error")
    logfmt = _LOGFMT_LEVEL.search(line) if _has_any(line, _LOGFMT_KEYS) else None
    if logfmt is not None and logfmt.group(1).lower() in _LEVELS:
        return _LEVELS[logfmt.group(1).lower()]
    status = _HTTP_STATUS.search(line, 0, _HTTP_SEARCH_CHARS) if '] "' in line else None
    if status is not None:
        return {"5": "error", "4": "warn"}.get(status.group(1)[0], "info")
    return "info" if _DPKG.match(line) else None


def _word_level(line: str) -> str | None:
    """A level word: capitals or ``[level]`` first, then lowercase ``error``/``warning``."""
    word = _WORD_LEVEL.search(line)
    if word is not None:
        return _LEVELS[(word.group(1) or word.group(2)).lower()]
    prose = _PROSE_LEVEL.search(line) if _has_any(line, _PROSE_WORDS) else None
    return None if prose is None else _LEVELS[prose.group(1)]


def _has_any(line: str, parts: tuple[str, ...]) -> bool:
    """A substring test that spares most lines a slower regex search."""
    return any(part in line for part in parts)


def _json_level(record: dict[str, Any]) -> str | None:
    for key in _JSON_LEVEL_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.lower() in _LEVELS:
            return _LEVELS[value.lower()]
        if isinstance(value, int) and not isinstance(value, bool):  # pino, bunyan: 30 = info
            return next(name for floor, name in _PINO_LEVELS if value >= floor)
    return None


# -- timestamps --------------------------------------------------------------


def line_time(
    line: str, read_at: float, tz: tzinfo | None = None, record: dict[str, Any] | None = None
) -> float | None:
    """When ``line`` says it was written (UNIX seconds), or None when it does not say.

    >>> line_time("2026-12-01T13:58:04.5Z GET /", 0.0)
    1796133484.5
    >>> line_time("no time here", 0.0) is None
    True
    """
    if record is None and line.startswith("{"):
        record = json_record(line)
    if record is not None:
        return _plausible(_json_time(record, tz))
    if _has_any(line, _LOGFMT_TIME_HINTS) and (pairs := logfmt_pairs(line)) is not None:
        return _plausible(_json_time(dict(pairs), tz))
    if line.startswith("<") and _RFC5424.match(line):
        line = line[line.index(" ") + 1 :]
    when = _iso_time(line, tz) or _syslog_time(line, read_at, tz) or _klog_time(line, read_at, tz)
    return _plausible(when or _clf_time(line))


def _plausible(when: float | None) -> float | None:
    """``when`` if it is a time a log line could carry (1970 to 5138), else None."""
    return when if when is not None and 0 < when < _LATEST_TS else None


def _iso_time(text: str, tz: tzinfo | None) -> float | None:
    """ISO 8601 / RFC 3339 at the start, with ``T`` or a space, ``.``/``,`` fractions, any zone."""
    found = _ISO.match(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = map(int, found.groups()[:6])
    fraction = float(f"0.{found.group(7)}") if found.group(7) else 0.0
    zone = _zone(found.group(8)) if found.group(8) else tz
    return _timestamp(zone, year, month, day, hour, minute, second, fraction)


def _syslog_time(text: str, read_at: float, tz: tzinfo | None) -> float | None:
    """RFC 3164: ``Dec  1 13:58:04`` (local time, no year), after an optional ``<PRI>``."""
    found = _RFC3164.match(text)
    if found is None or found.group(1) not in _MONTHS:
        return None
    month, day = _MONTHS[found.group(1)], int(found.group(2))
    hour, minute, second = (int(found.group(i)) for i in (3, 4, 5))
    return _in_year_before(read_at, tz, month, day, hour, minute, second, 0.0)


def _klog_time(text: str, read_at: float, tz: tzinfo | None) -> float | None:
    """klog / glog: ``E1201 13:58:04.123456`` (local time, no year)."""
    found = _KLOG.match(text)
    if found is None:
        return None
    month, day, hour, minute, second = (int(found.group(i)) for i in range(2, 7))
    fraction = int(found.group(7)) / 1_000_000
    return _in_year_before(read_at, tz, month, day, hour, minute, second, fraction)


def _clf_time(text: str) -> float | None:
    """Common/Combined Log Format: ``[01/Dec/2026:13:58:04 +0000]`` near the start."""
    found = _CLF.search(text, 0, _CLF_SEARCH_CHARS)
    if found is None or found.group(2) not in _MONTHS:
        return None
    day, year = int(found.group(1)), int(found.group(3))
    hour, minute, second = (int(found.group(i)) for i in (4, 5, 6))
    sign = -1 if found.group(7).startswith("-") else 1
    offset = timedelta(hours=abs(int(found.group(7))), minutes=int(found.group(8)))
    zone = timezone(sign * offset)
    return _timestamp(zone, year, _MONTHS[found.group(2)], day, hour, minute, second, 0.0)


def _json_time(record: dict[str, Any], tz: tzinfo | None) -> float | None:
    """A JSON line's (or logfmt line's) ``time``/``ts``/``timestamp``/``@timestamp``: RFC 3339
    text or UNIX time (a logfmt number is text: it is read as an ISO time only)."""
    for key in _JSON_TIME_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            when = _iso_time(value, tz)
            if when is not None:
                return when
        elif isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return value / 1000 if value > 1e11 else float(value)  # milliseconds or seconds
    return None


def _in_year_before(read_at: float, tz: tzinfo | None, *fields: int | float) -> float | None:
    """The timestamp of month/day/time in the year that puts it closest before ``read_at``."""
    year = datetime.fromtimestamp(read_at, tz).year
    latest = read_at + _FUTURE_SLACK.total_seconds()
    when = _timestamp(tz, year, *fields)
    if when is None or when > latest:
        return _timestamp(tz, year - 1, *fields)
    if read_at - when > _HALF_YEAR_S:  # a 1 January line read on 31 December, clocks apart
        following = _timestamp(tz, year + 1, *fields)
        if following is not None and following <= latest:
            return following
    return when


def _timestamp(tz: tzinfo | None, *fields: int | float) -> float | None:
    year, month, day, hour, minute, second, fraction = fields
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        if tz is not None:
            moment = moment.replace(tzinfo=tz)
        return moment.timestamp() + float(fraction)
    except (ValueError, OverflowError, OSError):  # 31 Feb, hour 25, year 0: not a time after all
        return None


def _zone(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(-offset if text.startswith("-") else offset)
