"""The crash loop of issue 14: SIGKILL a real server again and again under load.

:func:`crash_loop` starts ``pulseboard serve`` on a sqlite:// database, runs
each :class:`Load` beside it (a log writer, an NDJSON publisher, subscribers
that resume with their Last-Event-ID), kills the server at random moments,
restarts it on the same port and database, and finally asks each load to
check what it sees.

A new kind of traffic is one more :class:`Load`: its ``config`` is merged into
the server's (tables merged, arrays such as ``[[alerts]]`` appended), ``run``
drives it while the server comes and goes, ``check`` judges the end state.
:class:`WebhookAlerts` is such a load: an ``[[alerts]]`` rule on the tailed
file's ERROR lines, with a ``webhook`` to a listener of its own (issue 14.3).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.sources.conftest import ContinuousWriter, LogWriter
from tests.support.alert_deliveries import WebhookListener, check_deliveries, idempotency_key
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import answer

READY_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 60.0


class Node:
    """The server under test; ``url`` stays the same across restarts (same port)."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir, self.config = workdir, config
        self.server = ServerProcess(workdir, config)
        self.up = asyncio.Event()

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        """Start (again) on the same port; return once ``/readyz`` answers 200."""
        self.server = ServerProcess(self.workdir, self.config, port=self.server.port)
        await asyncio.to_thread(self.server.start, READY_TIMEOUT_S)
        async with httpx.AsyncClient(timeout=5) as client:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while (await client.get(f"{self.url}/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"not ready:\n{self.server.log()[-3000:]}"
                await asyncio.sleep(0.05)  # polling: only /readyz tells another process is up
        self.up.set()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        self.up.clear()
        self.server.stop(signal.SIGKILL)

    def stop(self) -> None:
        self.up.clear()
        self.server.stop()


class Load:
    """Traffic beside the server while it crashes; see the module docstring."""

    def config(self) -> dict[str, Any]:
        """What this load adds to the server's config."""
        return {}

    async def run(self, node: Node, stop: asyncio.Event) -> None:
        """Drive the load until ``stop``, riding out the server's deaths."""

    async def finish(self, node: Node) -> None:
        """The last steps once the crashes are over and the server is up (a last line)."""

    async def check(self, node: Node) -> None:
        """Assert what the server and this load saw at the end."""

    def close(self) -> None:
        """Release what the load holds (files), whatever happened."""


def merge_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base``: tables merged, arrays of tables appended."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        elif isinstance(value, list):
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    return merged


async def crash_loop(
    workdir: Path, loads: Sequence[Load], *, kills: int = 20, seed: int | None = None
) -> None:
    """Run ``loads`` against a server SIGKILLed ``kills`` times at random moments, then check."""
    rng = random.Random(seed)
    config: dict[str, Any] = {
        "server": {"heartbeat": 0.5, "retry_ms": 200},
        "broker": {"url": f"sqlite:///{workdir}/state/pb.db", "history": 20_000},
        "limits": {"publish_rate": 1_000_000, "publish_burst": 1_000_000},
    }
    for load in loads:
        config = merge_config(config, load.config())
    node = Node(workdir, config)
    await node.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(load.run(node, stop)) for load in loads]
    restarts: list[float] = []
    try:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 1.5))  # up, under load
            _raise_failed(tasks)
            node.kill()
            await asyncio.sleep(rng.uniform(0.0, 0.5))  # down: the writer goes on
            started = time.monotonic()
            await node.start()
            restarts.append(time.monotonic() - started)
        print(f"crash loop: {kills} restarts to /readyz, {_spread(restarts)}")
        await asyncio.sleep(0.5)  # the scenario: a last stretch of load on a server left up
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), CHECK_TIMEOUT_S)
        for load in loads:
            await load.finish(node)
        for load in loads:
            await load.check(node)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log = node.server.log()
        node.stop()
        for load in loads:
            load.close()
    assert "Traceback" not in log, log[-5000:]


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    ordered = sorted(seconds)
    median = ordered[len(ordered) // 2]
    return f"median {median:.1f} s, max {ordered[-1]:.1f} s"


def _raise_failed(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()


async def history(node: Node | str, channel: str) -> list[dict[str, Any]]:
    """Every retained event of ``channel`` on a node (or at a URL), paging through the API."""
    url = node if isinstance(node, str) else node.url
    events: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            params = {"limit": "1000", **({"after": events[-1]["id"]} if events else {})}
            response = await client.get(f"{url}/api/channels/{channel}/events", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert not page["gap"]
            if not page["events"]:
                return events
            events += page["events"]


class ErrorEvery(LogWriter):
    """A :class:`LogWriter` whose every ``every``-th numbered line is an ERROR line."""

    def __init__(self, path: Path, prefix: str, every: int) -> None:
        super().__init__(path, prefix)
        self.every = every

    def line(self, text: str | None = None) -> str:
        number = len(self.written)  # one writing thread: the number stays the line's
        if text is None and self.every and number % self.every == self.every - 1:
            text = f"ERROR {self.prefix} {number:06d}"
        return super().line(text)


class LogLines(Load):
    """A writer appending numbered lines to a tailed file, whatever the server does.

    With ``error_every = N`` every N-th line is an ERROR line (for :class:`WebhookAlerts`).
    """

    channel = "log.crash"

    def __init__(self, directory: Path, interval_s: float = 0.01, error_every: int = 0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "crash.log"
        self.writer = ErrorEvery(self.path, "written", error_every)
        self.interval_s = interval_s

    def config(self) -> dict[str, Any]:
        # the file is new at the first start: all of it is wanted, however many lines
        # were written before the tailer first opened it
        source = {"type": "logtail", "path": str(self.path), "lines": 100_000}
        return {"sources": [source]}

    async def run(self, node: Node, stop: asyncio.Event) -> None:
        background = ContinuousWriter(self.writer, self.interval_s)
        background.start()
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(background.stop)

    async def finish(self, node: Node) -> None:
        last = self.writer.line("last line")
        await answer(
            lambda: history(node, self.channel),
            lambda events: last in (event["data"]["line"] for event in events),
            "the last line delivered",
            CHECK_TIMEOUT_S,
            every_s=0.1,
        )

    def close(self) -> None:
        self.writer.close()

    async def check(self, node: Node) -> None:
        delivered = [event["data"]["line"] for event in await history(node, self.channel)]
        repeated = sorted({line for line in delivered if delivered.count(line) > 1})
        assert not repeated, f"{len(repeated)} lines delivered twice: {repeated[:5]}"
        missing = [line for line in self.writer.written if line not in set(delivered)]
        assert not missing, f"{len(missing)} lines never delivered: {missing[:5]}"
        assert delivered == self.writer.written
        print(f"crash loop: {len(delivered)} log lines, each delivered once, in order")


class Publisher(Load):
    """Posts numbered NDJSON batches; counts only the acknowledged (201) ones."""

    def __init__(self, channel: str, batch: int = 5) -> None:
        self.channel, self.batch = channel, batch
        self.acknowledged: dict[str, str] = {}  # id -> message
        self.sent = 0
        self.after: list[asyncio.Event] = []  # what must happen before the first post

    def config(self) -> dict[str, Any]:
        return {"channels": [{"name": self.channel, "kind": "notify"}]}

    async def run(self, node: Node, stop: asyncio.Event) -> None:
        url = f"{node.url}/api/channels/{self.channel}/events"
        headers = {"Content-Type": "application/x-ndjson"}
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in self.after)), 30)
        async with httpx.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                messages = [f"note {self.sent + n:06d}" for n in range(self.batch)]
                self.sent += self.batch
                body = "".join(json.dumps({"message": m}) + "\n" for m in messages)
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:  # killed meanwhile: not acknowledged
                    await asyncio.sleep(0.02)  # the pace of a client's retries
                    continue
                if response.status_code == 201:
                    ids = response.json()["ids"]
                    self.acknowledged.update(zip(ids, messages, strict=True))
                else:
                    assert response.status_code == 503, response.text
                await asyncio.sleep(0.02)  # the publisher's pace

    async def check(self, node: Node) -> None:
        events = await history(node, self.channel)
        messages = [event["data"]["message"] for event in events]
        assert len(messages) == len(set(messages)), "an event is in history twice"
        stored = {event["id"]: event["data"]["message"] for event in events}
        lost = {i: m for i, m in self.acknowledged.items() if stored.get(i) != m}
        assert not lost, f"{len(lost)} acknowledged events not in history: {list(lost)[:5]}"
        print(f"crash loop: {len(self.acknowledged)} events acknowledged, {len(events)} kept")


class Subscribers(Load):
    """Streams that reconnect with their Last-Event-ID after each death of the server."""

    def __init__(self, publisher: Publisher, count: int = 2) -> None:
        self.publisher = publisher
        self.seen: list[list[str]] = [[] for _ in range(count)]
        self.gaps: list[str] = []
        self.connected = [asyncio.Event() for _ in range(count)]
        publisher.after += self.connected  # no acknowledged event before every stream is open

    async def run(self, node: Node, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._follow(node, n, stop) for n in range(len(self.seen))))

    async def _follow(self, node: Node, number: int, stop: asyncio.Event) -> None:
        channel, seen = self.publisher.channel, self.seen[number]
        cursor: str | None = None
        while not stop.is_set() or not self._caught_up(seen):
            headers = {"Last-Event-ID": cursor} if cursor else {}
            try:
                async with SSEStream(f"{node.url}/events?channel={channel}", headers) as stream:
                    assert stream.response is not None
                    if stream.response.status_code != 200:
                        await asyncio.sleep(0.05)  # the pace of a client's reconnects
                        continue
                    self.connected[number].set()
                    while not (stop.is_set() and self._caught_up(seen)):
                        frame = await stream.next_event(within=1.0)
                        cursor = frame.id or cursor
                        if frame.event == "gap":
                            self.gaps.append(frame.data)
                        elif frame.event == channel:
                            seen.append(frame.id)
            except (httpx.HTTPError, EOFError, TimeoutError, OSError):
                await asyncio.sleep(0.05)  # the pace of a client's reconnects

    def _caught_up(self, seen: list[str]) -> bool:
        return set(self.publisher.acknowledged) <= set(seen)

    async def check(self, node: Node) -> None:
        assert not self.gaps, f"gap frames: {self.gaps[:3]}"
        ids = [event["id"] for event in await history(node, self.publisher.channel)]
        for seen in self.seen:
            assert len(seen) == len(set(seen)), "a subscriber saw an event twice"
            assert set(self.publisher.acknowledged) <= set(seen), "a subscriber missed an event"
            start = ids.index(seen[0])
            assert seen == ids[start : start + len(seen)], "a subscriber's events are not history's"
        print(f"crash loop: {len(self.seen)} subscribers saw {[len(s) for s in self.seen]} events")


class WebhookAlerts(Load):
    """An alert rule on the tailed file's ERROR lines, POSTing to a listener of its own.

    A cooldown of a microsecond: every ERROR line is an alert of its own. At the end each
    ERROR line in history raised exactly one alert, and the listener holds
    each alert at least once, copies only under its ``Idempotency-Key``.
    """

    rule = "Crash loop errors"
    notify = "crash.alerts"

    def __init__(self, lines: LogLines) -> None:
        assert lines.writer.every, "the log writer writes no ERROR lines"
        self.lines = lines
        self.listener = WebhookListener()
        self.listener.start()

    def config(self) -> dict[str, Any]:
        rule = {
            "name": self.rule,
            "channel": self.lines.channel,
            "pattern": "^ERROR ",
            "notify": self.notify,
            "cooldown": 1e-6,  # above 0 (required), below the time one alert takes to send
            "format": "json",
            "webhook": self.listener.url,
        }
        return {"alerts": [rule]}

    async def _error_ids(self, node: Node) -> list[str]:
        events = await history(node, self.lines.channel)
        return [event["id"] for event in events if event["data"]["line"].startswith("ERROR ")]

    async def _alerted(self, node: Node) -> list[str]:
        """The line id of each alert in the notify channel's history."""
        return [
            event["data"]["key"].rsplit(".", 1)[1] for event in await history(node, self.notify)
        ]

    async def finish(self, node: Node) -> None:
        errors = set(await self._error_ids(node))
        expected = {idempotency_key(line_id, self.rule) for line_id in errors}
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while not errors <= set(await self._alerted(node)) or not expected <= self.listener.keys():
            assert time.monotonic() < deadline, (
                f"alerted {len(set(await self._alerted(node)) & errors)} of {len(errors)} "
                f"ERROR lines, {len(self.listener.keys() & expected)} delivered"
            )
            await asyncio.sleep(0.2)  # polling: history and the listener (the loop has a deadline)

    async def check(self, node: Node) -> None:
        errors, alerted = await self._error_ids(node), await self._alerted(node)
        twice = sorted(line_id for line_id, count in Counter(alerted).items() if count > 1)
        assert not twice, f"{len(twice)} ERROR lines alerted twice: {twice[:5]}"
        assert sorted(alerted) == sorted(errors), "an alert for no ERROR line, or one missing"
        check_deliveries(alerted, self.listener.received, self.rule)
        copies = len(self.listener.received) - len(alerted)
        print(f"crash loop: {len(errors)} ERROR lines, each one alert; {copies} repeated POSTs")

    def close(self) -> None:
        self.listener.stop()
