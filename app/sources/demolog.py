"""demo-log: writes realistic access and application log lines for the demo to tail.

It publishes nothing itself: the files it appends to are followed by a
``logtail`` source like any other log, so the demo exercises the real path.
Lines come in mixed levels, with the odd ANSI colour and now and then a
multi-line traceback. A file that grows past ``max_bytes`` is rotated by
rename (``app.log`` → ``app.log.1``), which the tailer must survive too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import msgspec

from app.sources.base import Pause, Publish, SourceType, pause_unless_stopped

_PATHS = ("/", "/api/orders", "/api/orders/{n}", "/api/users/{n}", "/static/app.css", "/login")
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUSES = (200,) * 14 + (201, 204, 301, 304, 400, 401, 404, 404, 500, 502, 503)
_AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-httpx/0.28", "kube-probe/1.30")
_LOGGERS = ("api", "payments", "worker", "db.pool", "auth", "scheduler")
_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
_LEVEL_WEIGHTS = (20, 55, 15, 10)
_MESSAGES = {
    "DEBUG": ("cache lookup key=order:{n} hit=true", "sql SELECT * FROM orders WHERE id={n}"),
    "INFO": ("order {n} created", "user {n} logged in", "payment captured order={n}"),
    "WARN": ("slow query took {n}ms", "retrying upstream call attempt={d}", "pool {d}/20 busy"),
    "ERROR": ("charge failed for order {n}: card declined", "upstream timeout after {d}0s"),
}
_TRACEBACKS = {
    "charge failed": (
        '  File "/srv/shop/payments.py", line 88, in charge',
        "    receipt = gateway.capture(order.total)",
        '  File "/srv/shop/gateway.py", line 41, in capture',
        "    raise PaymentDeclined(self.last_response)",
        "shop.gateway.PaymentDeclined: card declined (code 51)",
    ),
    "upstream timeout": (
        '  File "/srv/shop/upstream.py", line 120, in fetch',
        "    response = await client.get(url, timeout=timeout)",
        '  File "/srv/shop/.venv/lib/python3.11/site-packages/httpx/_client.py", line 1801, in get',
        "    raise ReadTimeout(message) from exc",
        "httpx.ReadTimeout: timed out",
    ),
}
_COLOURS = ("\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[1;35m")
_RESET = "\x1b[0m"


class DemoLogConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[sources]] type = "demo-log"``: where to write, and how fast."""

    type: str = "demo-log"
    path: str = "var/log"
    rate: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 3.0
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 5 * 1024 * 1024
    seed: int | None = None


def access_line(rng: random.Random, now: float) -> str:
    """One access-log line in the combined format, with its response time."""
    path = rng.choice(_PATHS).format(n=rng.randint(1, 9999))
    status = rng.choice(_STATUSES)
    address = f"203.0.113.{rng.randint(1, 254)}"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    request = f"{rng.choice(_METHODS)} {path} HTTP/1.1"
    size, agent, took = rng.randint(0, 50_000), rng.choice(_AGENTS), rng.uniform(0.001, 1.5)
    return f'{address} - - [{stamp}] "{request}" {status} {size} "-" "{agent}" {took:.3f}'


def app_lines(rng: random.Random, now: float) -> list[str]:
    """One application log record: a line, or an ERROR line with its traceback."""
    level = rng.choices(_LEVELS, weights=_LEVEL_WEIGHTS)[0]
    template = rng.choice(_MESSAGES[level])
    message = template.format(n=rng.randint(1, 99_999), d=rng.randint(1, 9))
    if rng.random() < 0.1:
        message = f"{rng.choice(_COLOURS)}{message}{_RESET}"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f",{int(now * 1000) % 1000:03d}"
    worker = f"worker-{rng.randint(1, 4)}"
    line = f"{stamp} {level:<5} [{worker}] {rng.choice(_LOGGERS)}: {message}"
    if level == "ERROR" and rng.random() < 0.4:
        return [line, *_traceback(template)]
    return [line]


def _traceback(template: str) -> list[str]:
    frames = next(lines for start, lines in _TRACEBACKS.items() if template.startswith(start))
    return ["Traceback (most recent call last):", *frames]


def append_lines(path: Path, lines: list[str], max_bytes: int) -> None:
    """Append ``lines`` to ``path``, rotating it to ``<name>.1`` first when it is too big."""
    if path.exists() and path.stat().st_size > max_bytes:
        path.replace(path.with_name(path.name + ".1"))
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(f"{line}\n" for line in lines))


class DemoLogSource:
    """Appends a record to ``access.log`` or ``app.log`` every ``1 / rate`` seconds."""

    def __init__(
        self,
        config: DemoLogConfig,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        pause: Pause = pause_unless_stopped,
    ) -> None:
        self.config = config
        self.rng = rng or random.Random(config.seed)
        self.clock = clock
        self.pause = pause

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set; the directory is created if missing."""
        directory = Path(self.config.path)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        while not stop.is_set():
            name, lines = self.record()
            await asyncio.to_thread(append_lines, directory / name, lines, self.config.max_bytes)
            await self.pause(stop, 1 / self.config.rate)

    def record(self) -> tuple[str, list[str]]:
        """The next file name and the lines of one record for it."""
        now = self.clock()
        if self.rng.random() < 0.5:
            return "access.log", [access_line(self.rng, now)]
        return "app.log", app_lines(self.rng, now)


DEMO_LOG = SourceType(
    name="demo-log",
    config=DemoLogConfig,
    create=DemoLogSource,
    description="writes realistic demo log lines to files for a logtail source to follow",
)
