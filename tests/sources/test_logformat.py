"""A line's own time and level, for real sample lines of each format a log viewer meets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.sources.logtail.logformat import detect_level, line_facts, line_time

READ_AT = datetime(2026, 12, 1, 14, 8, 4, tzinfo=UTC).timestamp()  # 10 minutes after the lines


def utc(*fields: int, micro: int = 0) -> float:
    return datetime(*fields, microsecond=micro, tzinfo=UTC).timestamp()  # type: ignore[misc]


WRITTEN = utc(2026, 12, 1, 13, 58, 4)

# (format, a line as that program writes it, its time, its level)
SAMPLES = [
    (
        "dpkg.log status",
        "2026-12-01 13:58:04 status installed chromium:amd64 131.0.6778.85-1~deb12u1",
        WRITTEN,
        "info",
    ),
    (
        "dpkg.log action",
        "2026-12-01 13:58:04 upgrade libc6:amd64 2.36-9+deb12u8 2.36-9+deb12u9",
        WRITTEN,
        "info",
    ),
    (
        "dpkg.log startup",
        "2026-12-01 13:58:04 startup packages configure",
        WRITTEN,
        "info",
    ),
    (
        "apt term.log",
        "dpkg: error processing package nginx-common (--configure):",
        None,
        "error",
    ),
    (
        "apt term.log, lowercase warning",
        "dpkg: warning: unable to delete old directory '/usr/share/doc/foo': Directory not empty",
        None,
        "warn",
    ),
    (
        "nginx access, 200",
        '203.0.113.7 - - [01/Dec/2026:13:58:04 +0000] "GET /error/page.html HTTP/1.1" 200 612 '
        '"-" "Mozilla/5.0 (X11; Linux x86_64)"',
        WRITTEN,
        "info",
    ),
    (
        "nginx access, 502",
        '203.0.113.7 - - [01/Dec/2026:14:58:04 +0100] "POST /api/v1/orders HTTP/1.1" 502 157 '
        '"https://shop.example/cart" "curl/8.5.0"',
        WRITTEN,
        "error",
    ),
    (
        "apache access, 404",
        '198.51.100.23 - alice [01/Dec/2026:08:58:04 -0500] "GET /favicon.ico HTTP/1.1" 404 196',
        WRITTEN,
        "warn",
    ),
    (
        "nginx error log",
        "2026/12/01 13:58:04 [error] 1234#1234: *5 connect() failed (111: Connection refused) "
        'while connecting to upstream, client: 203.0.113.7, server: _, request: "GET / HTTP/1.1"',
        WRITTEN,
        "error",
    ),
    (
        "sshd via rsyslog (RFC 3164)",
        "Dec  1 13:58:04 web-1 sshd[48213]: error: kex_exchange_identification: "
        "Connection closed by remote host",
        WRITTEN,
        "error",
    ),
    (
        "sshd accepted",
        "Dec  1 13:58:04 web-1 sshd[48213]: Accepted publickey for deploy from 192.0.2.4 "
        "port 52110 ssh2: ED25519 SHA256:Xq1cT1b3pKZgWq",
        WRITTEN,
        None,
    ),
    (
        "syslog <3> (RFC 3164 with PRI)",
        "<27>Dec  1 13:58:04 web-1 backup[901]: rsync exited with code 23",
        WRITTEN,
        "error",
    ),
    (
        "syslog <4>",
        "<12>Dec  1 13:58:04 web-1 kernel: nf_conntrack: table full, dropping packet",
        WRITTEN,
        "warn",
    ),
    (
        "syslog <6>, even with ERROR in the text",
        "<30>Dec  1 13:58:04 web-1 app[77]: retrying after ERROR 17",
        WRITTEN,
        "info",
    ),
    (
        "syslog <7>",
        "<15>Dec  1 13:58:04 web-1 dhclient[612]: DHCPREQUEST for 10.0.0.5 on eth0",
        WRITTEN,
        "debug",
    ),
    (
        "RFC 5424",
        "<34>1 2026-12-01T13:58:04.003Z web-1 su 2203 ID47 - 'su root' failed for lonvick",
        utc(2026, 12, 1, 13, 58, 4, micro=3000),
        "error",
    ),
    (
        "rsyslog high precision (RFC 3339)",
        "2026-12-01T14:58:04.512346+01:00 web-1 systemd[1]: Started session-42.scope.",
        utc(2026, 12, 1, 13, 58, 4, micro=512346),
        None,
    ),
    (
        "kubelet klog E",
        'E1201 13:58:04.123456    1234 pod_workers.go:1301] "Error syncing pod, skipping" '
        'err="failed to \\"StartContainer\\" for \\"api\\" with CrashLoopBackOff" '
        'pod="shop/api-7d9c6b5f4-x2x9q"',
        utc(2026, 12, 1, 13, 58, 4, micro=123456),
        "error",
    ),
    (
        "kubelet klog W",
        "W1201 13:58:04.000001    1234 reflector.go:561] failed to list *v1.Node: Unauthorized",
        utc(2026, 12, 1, 13, 58, 4, micro=1),
        "warn",
    ),
    (
        "kubelet klog I",
        'I1201 13:58:04.200000    1234 kubelet.go:2392] "SyncLoop ADD" source="api" pods=1',
        utc(2026, 12, 1, 13, 58, 4, micro=200000),
        "info",
    ),
    (
        "Python logging default asctime",
        "2026-12-01 13:58:04,123 - app.worker - WARNING - queue depth 5012 above 5000",
        utc(2026, 12, 1, 13, 58, 4, micro=123000),
        "warn",
    ),
    (
        "Python logging basicConfig",
        "ERROR:app.db:could not connect to server: Connection refused",
        None,
        "error",
    ),
    (
        "JSON (zap), float seconds",
        '{"level":"error","ts":1796133484.25,"caller":"server/main.go:88","msg":"bind failed"}',
        WRITTEN + 0.25,
        "error",
    ),
    (
        "JSON (structlog), RFC 3339 text",
        '{"event": "slow query", "severity": "warning", "timestamp": "2026-12-01T13:58:04Z"}',
        WRITTEN,
        "warn",
    ),
    (
        "JSON (pino), numeric level, milliseconds",
        '{"level":50,"time":1796133484000,"pid":41,"hostname":"web-1","msg":"request failed"}',
        WRITTEN,
        "error",
    ),
    (
        "JSON, lvl",
        '{"lvl": "info", "msg": "ERROR in text", "t": "2026-12-01T13:58:04+00:00"}',
        WRITTEN,
        "info",
    ),
    (
        "logfmt (Go kit)",
        'ts=2026-12-01T13:58:04Z level=warn caller=main.go:42 msg="disk 91% full"',
        WRITTEN,
        "warn",
    ),
    (
        "logfmt (logrus), quoted time",
        'time="2026-12-01T13:58:04Z" level=error msg="upstream timeout" attempt=3',
        WRITTEN,
        "error",
    ),
    (
        "prose that mentions ts= is not logfmt",
        "retrying with ts=2026-12-01T13:58:04Z soon",
        None,
        None,
    ),
    (
        "Apache error log level",
        "[Tue Dec 01 13:58:04.123456 2026] [proxy:error] [pid 812] AH00940: HTTP: disabled "
        "connection for (backend)",
        None,
        "error",
    ),
    ("plain prose with a lowercase error", "an error in lowercase prose", None, "error"),
    ("no level, no time", "compiling 412 files", None, None),
    ("counts are not levels", "no level here, errors=0, warnings=3", None, None),
]


@pytest.mark.parametrize(
    ("line", "written", "level"),
    [sample[1:] for sample in SAMPLES],
    ids=[sample[0] for sample in SAMPLES],
)
def test_time_and_level_of_real_lines(line: str, written: float | None, level: str | None) -> None:
    facts = line_facts(line, READ_AT, UTC)
    assert facts.level == level
    assert facts.ts == (pytest.approx(written, abs=1e-6) if written is not None else None)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2024-01-01 12:00:00,123 ERROR app: boom", "error"),
        ("[2024-01-01] WARNING something", "warn"),
        ("W WARN x", "warn"),
        ("FATAL: out of memory", "error"),
        ("CRITICAL x", "error"),
        ("2024/01/01 10:00:00 [notice] 1#1: start", "info"),
        ("2024/01/01 10:00:00 [emerg] 1#1: bind() failed", "error"),
        ('{"levelname": "DEBUG"}', "debug"),
        ('time=1 level="error" msg="ERROR"', "error"),
        ("lvl=dbg msg=x INFO", "info"),
        ("ERRORS are not ERRORCODE", None),
        ("INFO: retried after an error", "info"),
        ('{"msg": "no level"}', None),
        ("{not json", None),
        ("<191>Dec  1 13:58:04 h x", "debug"),
        ("", None),
    ],
)
def test_detect_level(line: str, level: str | None) -> None:
    assert detect_level(line) == level


def test_a_timestamp_without_a_zone_is_local_time() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert line_time("2026-12-01 15:58:04,000 INFO x", READ_AT, plus_two) == WRITTEN


@pytest.mark.parametrize(
    ("read_at", "year"),
    [
        (utc(2027, 1, 1, 0, 5, 0), 2026),  # a Dec 31 line read on New Year's Day: last year's
        (utc(2026, 12, 31, 23, 59, 0), 2026),
        (utc(2026, 12, 31, 10, 0, 0), 2026),  # the writer's clock a little ahead: still this year
    ],
)
def test_a_syslog_time_takes_the_year_before_the_read_time(read_at: float, year: int) -> None:
    assert line_time("Dec 31 23:58:04 h cron[1]: x", read_at, UTC) == utc(year, 12, 31, 23, 58, 4)


@pytest.mark.parametrize(
    "line",
    [
        "Feb 30 10:00:00 h x: not a date",
        "2026-13-01 10:00:00 not a month",
        "[99/Foo/2026:13:58:04 +0000] not a month",
        "release 2026-12-01 13:58:04 quoted later in the line",
        "E9999 13:58:04.123456    1 x.go:1] not a date",
        "1969-12-31 23:59:59 before the epoch: a payload's ts is never negative",
        "0000-01-01 00:00:00 year zero",
        "9999-12-31 23:59:59 far future",
        '{"ts": -5, "msg": "negative"}',
        '{"time": 1e300, "msg": "absurd"}',
    ],
)
def test_what_only_looks_like_a_time_is_none(line: str) -> None:
    assert line_time(line, READ_AT, UTC) is None


def test_a_new_years_line_read_just_before_midnight_is_next_years() -> None:
    read_at = utc(2026, 12, 31, 23, 59, 0)  # the writer's clock a few minutes ahead
    assert line_time("Jan  1 00:02:00 h x", read_at, UTC) == utc(2027, 1, 1, 0, 2, 0)
