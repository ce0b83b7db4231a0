"""Alerts on logs: rules, the per-rule window, and the engine against a real broker and webhook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.alerts import AlertEngine, AlertRule, AlertWindow, notify_payload, webhook_body
from app.broker.base import BrokerUnavailable, Start
from app.broker.hub import Subscription
from app.broker.memory import MemoryBroker
from app.events import Event, KindRegistry
from app.settings import AlertSettings, SettingsError
from app.sources.base import configure_sources
from app.sources.demolog import append_lines
from app.sources.logtail import LOGTAIL, LogTailSource

ERROR_LINE = "2026-11-27 18:30:01,123 ERROR [worker-3] payments: charge failed for order 7"
INFO_LINE = "2026-11-27 18:30:02,456 INFO  [worker-1] api: order 8 created"


def rule(**keys: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "channel": "log.*",
        "pattern": "ERROR|Traceback",
        "notify": "ops.alerts",
    }
    return AlertSettings(**{**values, **keys})


def log_event(
    line: str, level: str | None = "error", channel: str = "log.app", seq: int = 1
) -> Event:
    data = {"line": line, "file": "app.log", "level": level}
    return Event(f"e-{seq}", channel, "log", 0.0, data, seq=seq, offset=seq - 1)


# -- rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"pattern": "(unclosed"}, r"alerts\[0\]\.pattern: not a valid RE2 pattern: missing \)"),
        ({"pattern": "(?=lookahead)"}, r"alerts\[0\]\.pattern"),
        ({"level": "fatal"}, r"alerts\[0\]\.level"),
        ({"webhook": "ftp://example.invalid/"}, r"alerts\[0\]\.webhook"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_key(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        AlertRule.from_settings(0, rule(**keys))


def test_a_rule_matches_log_lines_by_pattern_level_and_kind() -> None:
    errors_only = AlertRule.from_settings(0, rule(pattern="failed", level="warn"))
    assert errors_only.matches(log_event(ERROR_LINE))
    assert not errors_only.matches(log_event(ERROR_LINE, level="info"))
    assert not errors_only.matches(log_event(ERROR_LINE, level=None))
    assert not errors_only.matches(log_event(INFO_LINE, level="error"))
    notify = Event("e-1", "log.app", "notify", 0.0, {"message": "failed"}, seq=1, offset=0)
    assert not errors_only.matches(notify)


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    evil = AlertRule.from_settings(0, rule(pattern="(a+)+$"))
    assert not evil.matches(log_event("a" * 100_000 + "!"))


# -- the window --------------------------------------------------------------


def test_a_storm_sends_one_alert_then_one_summary_per_window_with_the_count() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(window=60)))
    storm = [log_event(f"ERROR {n}", seq=n) for n in range(1, 101)]
    first = window.offer(storm[0], now=0.0)
    assert first is not None
    assert (first.event, first.suppressed) == (storm[0], 0)
    assert [window.offer(event, now=10.0) for event in storm[1:]] == [None] * 99
    assert window.close_if_due(59.9) is None
    summary = window.close_if_due(60.0)
    assert summary is not None
    assert (summary.event, summary.suppressed) == (storm[-1], 99)
    assert window.offer(log_event("ERROR late", seq=101), now=61.0) is None
    assert window.close_if_due(120.0) is not None


def test_a_quiet_window_closes_without_a_summary_and_the_next_match_alerts_at_once() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(window=60)))
    assert window.offer(log_event("ERROR a"), now=0.0) is not None
    assert window.close_if_due(60.0) is None
    assert window.deadline is None
    assert window.offer(log_event("ERROR b"), now=61.0) is not None


# -- what a user sees --------------------------------------------------------


def test_the_notify_event_carries_the_line_the_file_and_a_link() -> None:
    alert_rule = AlertRule.from_settings(0, rule())
    window = AlertWindow(alert_rule)
    alert = window.offer(log_event(ERROR_LINE), now=0.0)
    assert alert is not None
    payload = notify_payload(alert)
    assert payload == {
        "message": ERROR_LINE,
        "title": "app.log: /ERROR|Traceback/",
        "level": "error",
        "tags": ["alert", "log.app"],
        "link": "/channels/log.app",
    }
    assert webhook_body(alert)["line"] == ERROR_LINE


def test_a_summary_says_how_many_matches_were_held_back() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(window=30)))
    window.offer(log_event("ERROR first", level="warn"), now=0.0)
    for n in range(2, 9):
        window.offer(log_event(f"ERROR {n}", level="warn", seq=n), now=1.0)
    summary = window.close_if_due(30.0)
    assert summary is not None
    payload = notify_payload(summary)
    assert payload["title"] == "app.log: /ERROR|Traceback/ (+7 more)"
    assert payload["message"].startswith("ERROR 8\n\n7 more matching lines in 30s")
    assert payload["level"] == "warning"
    assert webhook_body(summary)["suppressed"] == 7


def test_a_huge_line_still_makes_a_valid_notification() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(pattern="x")))
    alert = window.offer(log_event("x" * 100_000), now=0.0)
    assert alert is not None
    assert len(notify_payload(alert)["message"]) <= 4000


# -- the engine, against a real broker and a real webhook receiver -----------


class WebhookReceiver:
    """A tiny HTTP/1.1 server on 127.0.0.1: answers each POST with the next status."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = json.loads(await reader.readexactly(length))
                status = self.statuses.pop(0) if self.statuses else 200
                await self.bodies.put((status, body))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def next(self) -> tuple[int, dict[str, Any]]:
        return await asyncio.wait_for(self.bodies.get(), timeout=10)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver([])
    server = await asyncio.start_server(hook.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hook.url = f"http://127.0.0.1:{port}/hook"
    async with server:
        yield hook


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(KindRegistry(), history_size=1000, max_lag=100)


@pytest.fixture
async def alerts(broker: MemoryBroker) -> AsyncIterator[Subscription]:
    async with broker.subscribe(["ops.alerts"], Start()) as subscription:
        yield subscription


async def next_alerts(subscription: Subscription, count: int = 1) -> list[dict[str, Any]]:
    """The next ``count`` notify payloads, waiting at most 5 s."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(found) < count:
            await subscription.wake.wait()
            subscription.wake.clear()
            found.extend(event.data for event in subscription.take())
    return found


async def log_line(
    broker: MemoryBroker, line: str, level: str | None = "error", channel: str = "log.app"
) -> None:
    await broker.publish(channel, "log", {"line": line, "file": "app.log", "level": level})


async def start(engine: AlertEngine) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Run ``engine`` and wait until it follows its channels."""
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    if engine.rules:
        await asyncio.wait_for(engine.watching.wait(), timeout=10)
    return stop, task


async def finish(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_a_matching_line_reaches_the_notify_channel(
    broker: MemoryBroker, alerts: Subscription
) -> None:
    stop, task = await start(AlertEngine([rule()], broker))
    await log_line(broker, INFO_LINE, level="info")
    await log_line(broker, "ERROR on another channel", channel="audit.app")
    await log_line(broker, ERROR_LINE)
    [alert] = await next_alerts(alerts)
    assert alert["message"] == ERROR_LINE
    assert alert["link"] == "/channels/log.app"
    assert alert["level"] == "error"
    await finish(stop, task)
    assert alerts.take() == []


async def test_the_webhook_receives_the_line_after_retrying_server_errors(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [503, 500]
    engine = AlertEngine([rule(webhook=receiver.url)], broker, retry_delays_s=(0.01, 0.02, 0.04))
    stop, task = await start(engine)
    await log_line(broker, ERROR_LINE)
    statuses = [await receiver.next() for _ in range(3)]
    assert [status for status, _ in statuses] == [503, 500, 200]
    assert {body["line"] for _, body in statuses} == {ERROR_LINE}
    assert statuses[-1][1]["channel"] == "log.app"
    await finish(stop, task)
    assert (engine.stats.webhooks_sent, engine.stats.webhooks_failed) == (1, 0)


async def test_a_client_error_is_not_retried(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [400]
    engine = AlertEngine([rule(webhook=receiver.url)], broker, retry_delays_s=(0.01,))
    stop, task = await start(engine)
    await log_line(broker, ERROR_LINE)
    assert (await receiver.next())[0] == 400
    await next_alerts(alerts)
    await finish(stop, task)
    assert receiver.bodies.empty()
    assert engine.stats.webhooks_failed == 1


async def test_an_unreachable_webhook_never_blocks_the_notifications(
    broker: MemoryBroker, alerts: Subscription
) -> None:
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    engine = AlertEngine([rule(webhook=dead, window=0.05)], broker, retry_delays_s=(30.0,))
    stop, task = await start(engine)
    await log_line(broker, "ERROR one")
    assert [a["message"] for a in await next_alerts(alerts)] == ["ERROR one"]
    await finish(stop, task)  # the retry waiting 30 s is cut short by stop


async def test_a_storm_sends_one_alert_and_then_one_with_the_count(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    engine = AlertEngine([rule(window=0.3, webhook=receiver.url)], broker)
    stop, task = await start(engine)
    for n in range(50):
        await log_line(broker, f"ERROR storm {n}")
    first, summary = await next_alerts(alerts, 2)
    assert first["message"] == "ERROR storm 0"
    assert summary["title"].endswith("(+49 more)")
    assert summary["message"].startswith("ERROR storm 49\n")
    bodies = [(await receiver.next())[1] for _ in range(2)]
    assert [body["suppressed"] for body in bodies] == [0, 49]
    await finish(stop, task)
    assert engine.stats.matches == 50


async def test_a_match_inside_a_burst_past_max_lag_still_alerts(
    broker: MemoryBroker, alerts: Subscription, caplog: pytest.LogCaptureFixture
) -> None:
    stop, task = await start(AlertEngine([rule(pattern="needle", window=0.01)], broker))
    for n in range(500):  # five times max_lag, published without yielding
        await log_line(broker, "ERROR needle" if n == 250 else f"INFO filler {n}", level="info")
    [alert] = await next_alerts(alerts)
    assert alert["message"] == "ERROR needle"
    assert "catching up from history" in caplog.text
    await log_line(broker, "ERROR needle again")
    [alert] = await next_alerts(alerts)
    assert alert["message"].startswith("ERROR needle again")  # within the window: a summary
    await finish(stop, task)


async def test_an_error_appended_to_a_real_log_file_alerts_through_logtail(
    tmp_path: Path, broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        return await broker.publish(channel, kind, broker.kinds.get(kind).validate(data))

    entry = {"type": "logtail", "path": str(tmp_path / "*.log"), "lines": 0}
    [tail_config] = configure_sources([entry], {"logtail": LOGTAIL})
    tail = LogTailSource(tail_config.config)
    stop, engine = await start(AlertEngine([rule(webhook=receiver.url)], broker))
    tailing = asyncio.create_task(tail.run(publish, stop))
    await asyncio.wait_for(tail.ready.wait(), timeout=10)

    append_lines(tmp_path / "app.log", [INFO_LINE, ERROR_LINE], max_bytes=1 << 20)

    [alert] = await next_alerts(alerts)
    assert (alert["message"], alert["link"]) == (ERROR_LINE, "/channels/log.app")
    assert alert["title"] == "app.log: /ERROR|Traceback/"
    _status, body = await receiver.next()
    assert (body["line"], body["file"], body["level"]) == (ERROR_LINE, "app.log", "error")
    await finish(stop, engine)
    await asyncio.wait_for(tailing, timeout=10)


class FlakyBroker(MemoryBroker):
    """A memory broker whose subscribe fails ``failures`` times, as while Redis is down."""

    def __init__(self) -> None:
        super().__init__(KindRegistry(), history_size=1000, max_lag=100)
        self.failures = 0

    def subscribe(self, patterns: Sequence[str], start: Start) -> Any:
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable("connection refused")
        return super().subscribe(patterns, start)


async def test_the_engine_outlives_a_broker_outage_and_an_ended_subscription(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = FlakyBroker()
    engine = AlertEngine([rule(window=0.01)], broker, resubscribe_s=0.01)
    async with broker.subscribe(["ops.alerts"], Start()):
        broker.failures = 1
        stop, task = await start(engine)
        assert "broker unavailable (connection refused)" in caplog.text
        engine.watching.clear()
        broker.local.end_all("restarting")  # ends every subscription, ours and the engine's
        await asyncio.wait_for(engine.watching.wait(), timeout=10)
    async with broker.subscribe(["ops.alerts"], Start()) as alerts:
        await log_line(broker, ERROR_LINE)
        assert [a["message"] for a in await next_alerts(alerts)] == [ERROR_LINE]
    await finish(stop, task)


async def test_without_rules_run_just_waits_for_stop(broker: MemoryBroker) -> None:
    stop, task = await start(AlertEngine([], broker))
    assert not task.done()
    await finish(stop, task)
