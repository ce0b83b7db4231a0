"""Alerts on logs: rules, the per-rule window, and the engine against a real broker and webhook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.alerts import AlertEngine, AlertRule, AlertWindow, alert_facts, notify_payload
from app.broker.base import Broker, BrokerUnavailable, Start
from app.broker.hub import Subscription
from app.broker.memory import MemoryBroker
from app.events import Event, KindRegistry, State
from app.settings import AlertSettings, SettingsError
from app.sources.base import configure_sources
from app.sources.demolog import append_lines
from app.sources.logtail.source import LOGTAIL, LogTailSource
from tests.broker.conftest import build_broker
from tests.support.waiting import until
from tests.support.webhook_receiver import WebhookReceiver, receiving
from tests.support.webhook_shapes import SHAPES, escape_slack

ERROR_LINE = "2026-11-27 18:30:01,123 ERROR [worker-3] payments: charge failed for order 7"
INFO_LINE = "2026-11-27 18:30:02,456 INFO  [worker-1] api: order 8 created"


def rule(**keys: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "name": "Payments errors",
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
        ({"line_level": "critical"}, r"alerts\[0\]\.line_level"),
        ({"webhook": "ftp://example.invalid/"}, r"alerts\[0\]\.webhook"),
        ({"webhook": "https://ntfy.sh/", "format": "ntfy"}, r"alerts\[0\]\.webhook: format ntfy"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_key(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        AlertRule.from_settings(0, rule(**keys))


def test_a_rule_matches_log_lines_by_pattern_level_and_kind() -> None:
    errors_only = AlertRule.from_settings(0, rule(pattern="failed", line_level="warn"))
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


def test_the_notify_event_is_titled_by_the_rule_and_links_the_line_absolutely() -> None:
    alert_rule = AlertRule.from_settings(0, rule())
    window = AlertWindow(alert_rule)
    alert = window.offer(log_event(ERROR_LINE, seq=7), now=0.0)
    assert alert is not None
    payload = notify_payload(alert, "https://dash.example.com/pulse")
    assert payload == {
        "message": ERROR_LINE,
        "title": "Payments errors",
        "level": "error",
        "tags": ["alert", "log.app", "app.log"],
        "link": "https://dash.example.com/pulse/channels/log.app/lines/e-7#line-e-7",
        "key": "alert.payments-errors.e-7",
    }
    facts = alert_facts(alert, "https://dash.example.com/pulse")
    said = (facts["rule"], facts["line"], facts["file"])
    assert said == ("Payments errors", ERROR_LINE, "app.log")
    assert facts["link"] == payload["link"]


@pytest.mark.parametrize(("level", "shown"), [("warn", "warning"), ("critical", "critical")])
def test_the_rule_sets_the_level_of_its_notifications(level: str, shown: str) -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(level=level)))
    alert = window.offer(log_event(ERROR_LINE, level="info"), now=0.0)
    assert alert is not None
    assert notify_payload(alert)["level"] == shown


def test_cooldown_is_the_least_time_between_two_alerts_of_a_rule() -> None:
    alert_rule = AlertRule.from_settings(0, rule(cooldown="10m"))
    assert alert_rule.cooldown_s == 600
    window = AlertWindow(alert_rule)
    assert window.offer(log_event("ERROR a", seq=1), now=0.0) is not None
    assert window.offer(log_event("ERROR b", seq=2), now=61.0) is None
    assert window.close_if_due(599.0) is None
    summary = window.close_if_due(600.0)
    assert summary is not None
    assert (summary.event.data["line"], summary.suppressed) == ("ERROR b", 1)
    assert window.close_if_due(1200.0) is None  # a quiet cooldown sends nothing
    assert window.offer(log_event("ERROR c", seq=3), now=1201.0) is not None


def test_window_is_the_older_name_of_cooldown() -> None:
    assert AlertRule.from_settings(0, rule(window=30)).cooldown_s == 30
    assert AlertRule.from_settings(0, rule()).cooldown_s == 60


def test_a_summary_says_how_many_matches_were_held_back() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(window=30)))
    window.offer(log_event("ERROR first", level="warn"), now=0.0)
    for n in range(2, 9):
        window.offer(log_event(f"ERROR {n}", level="warn", seq=n), now=1.0)
    summary = window.close_if_due(30.0)
    assert summary is not None
    payload = notify_payload(summary)
    assert payload["title"] == "Payments errors (+7 more)"
    assert payload["message"].startswith("ERROR 8\n\n7 more matching lines in 30s")
    assert payload["level"] == "error"
    assert alert_facts(summary)["suppressed"] == 7


def test_a_huge_line_still_makes_a_valid_notification() -> None:
    window = AlertWindow(AlertRule.from_settings(0, rule(pattern="x")))
    alert = window.offer(log_event("x" * 100_000), now=0.0)
    assert alert is not None
    assert len(notify_payload(alert)["message"]) <= 4000


# -- the engine, against a real broker and a real webhook receiver -----------


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with receiving() as hook:
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
    broker: Broker, line: str, level: str | None = "error", channel: str = "log.app"
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
    assert alert["link"].startswith("http://127.0.0.1:8000/channels/log.app/lines/")
    assert alert["title"] == "Payments errors"
    await finish(stop, task)
    assert alerts.take() == []


async def test_the_webhook_receives_the_line_after_retrying_server_errors(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [503, 500]
    engine = AlertEngine([rule(webhook=receiver.url)], broker, retry_base_s=0.01)
    stop, task = await start(engine)
    await log_line(broker, ERROR_LINE)
    statuses = [await receiver.next() for _ in range(3)]
    assert [status for status, _ in statuses] == [503, 500, 200]
    assert {body["line"] for _, body in statuses} == {ERROR_LINE}
    assert statuses[-1][1]["channel"] == "log.app"
    await finish(stop, task)
    assert (engine.outbox.stats.sent, engine.outbox.stats.given_up) == (1, 0)


async def test_a_client_error_is_not_retried(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [400]
    engine = AlertEngine([rule(webhook=receiver.url)], broker, retry_base_s=0.01)
    stop, task = await start(engine)
    await log_line(broker, ERROR_LINE)
    assert (await receiver.next())[0] == 400
    await next_alerts(alerts)
    await finish(stop, task)
    assert receiver.bodies.empty()
    assert engine.outbox.stats.given_up == 1


async def test_an_unreachable_webhook_never_blocks_the_notifications(
    broker: MemoryBroker, alerts: Subscription
) -> None:
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    engine = AlertEngine([rule(webhook=dead, window=0.05)], broker, retry_base_s=60.0)
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
    assert "fell behind" in caplog.text
    await log_line(broker, "ERROR needle again")
    [alert] = await next_alerts(alerts)
    assert alert["message"].startswith("ERROR needle again")  # within the window: a summary
    await finish(stop, task)


async def test_an_error_appended_to_a_real_log_file_alerts_through_logtail(
    tmp_path: Path, broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    async def publish(
        channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        return await broker.publish(channel, kind, broker.kinds.get(kind).validate(data), state)

    entry = {"type": "logtail", "path": str(tmp_path / "*.log"), "lines": 0}
    [tail_config] = configure_sources([entry], {"logtail": LOGTAIL})
    tail = LogTailSource(tail_config.config)
    stop, engine = await start(AlertEngine([rule(webhook=receiver.url)], broker))
    tailing = asyncio.create_task(tail.run(publish, stop))
    await asyncio.wait_for(tail.ready.wait(), timeout=10)

    append_lines(tmp_path / "app.log", [INFO_LINE, ERROR_LINE], max_bytes=1 << 20)

    [alert] = await next_alerts(alerts)
    assert alert["message"] == ERROR_LINE
    assert alert["title"] == "Payments errors"
    _status, body = await receiver.next()
    assert (body["line"], body["file"], body["level"]) == (ERROR_LINE, "app.log", "error")
    assert body["link"] == alert["link"]
    assert (
        body["link"]
        == f"http://127.0.0.1:8000/channels/log.app/lines/{body['id']}#line-{body['id']}"
    )
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


@pytest.mark.parametrize("fmt", ["json", "slack", "discord", "ntfy"])
async def test_each_webhook_format_reaches_its_listener_in_the_shape_its_service_documents(
    fmt: str, broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    hook = f"{receiver.url}/ops-alerts"  # ntfy: a topic URL; the JSON goes to /hook/, its root
    engine = AlertEngine(
        [rule(webhook=hook, format=fmt)], broker, base_url="https://dash.example.com"
    )
    stop, task = await start(engine)
    line = ERROR_LINE + " <!channel> @everyone & more"
    await log_line(broker, line)
    [alert] = await next_alerts(alerts)
    _status, body = await receiver.next()
    await finish(stop, task)
    link = alert["link"]
    assert link.startswith("https://dash.example.com/channels/log.app/lines/")
    said = SHAPES[fmt](body)
    assert said["title"] == "Payments errors"
    assert line in said["line"] or escape_slack(line) in said["line"]
    assert "app.log" in said["file"]
    assert said["link"] == link
    assert receiver.paths == ["/hook/" if fmt == "ntfy" else "/hook/ops-alerts"]


# -- a durable consumer: cursor, cooldowns and outbox across engines -----------


async def test_a_new_engine_resumes_after_the_last_line_handled_not_at_the_live_end(
    broker: MemoryBroker, alerts: Subscription
) -> None:
    stop, task = await start(AlertEngine([rule(window=0.01)], broker))
    await log_line(broker, "ERROR before")
    assert [a["message"] for a in await next_alerts(alerts)] == ["ERROR before"]
    await finish(stop, task)
    await log_line(broker, "ERROR while it was down")  # then a restart of the engine
    await log_line(broker, INFO_LINE, level="info")
    stop, task = await start(AlertEngine([rule(window=0.01)], broker))
    [resumed] = await next_alerts(alerts)  # at once, or as the restored cooldown's summary
    assert resumed["message"].startswith("ERROR while it was down")
    await log_line(broker, "ERROR after")
    [after] = await next_alerts(alerts)
    assert after["message"].startswith("ERROR after")
    await finish(stop, task)
    assert alerts.take() == []
    cursor = (await broker.load_state("alerts:"))["alerts:cursor"]
    assert cursor == broker.channels()[0].last_id  # log.app's newest: every line handled


async def test_an_open_cooldown_survives_a_restart_and_sends_its_summary(
    broker: MemoryBroker, alerts: Subscription
) -> None:
    stop, task = await start(AlertEngine([rule(cooldown=0.5)], broker))
    await log_line(broker, "ERROR first")
    await next_alerts(alerts)
    await log_line(broker, "ERROR held back")
    await finish(stop, task)  # the line is held back now, or checked again by the next engine
    stop, task = await start(AlertEngine([rule(cooldown=0.5)], broker))
    [summary] = await next_alerts(alerts)
    assert summary["title"] == "Payments errors (+1 more)"
    assert summary["message"].startswith("ERROR held back")
    await finish(stop, task)


async def test_a_cursor_of_another_epoch_starts_at_the_live_end_and_says_so(
    broker: MemoryBroker, alerts: Subscription, caplog: pytest.LogCaptureFixture
) -> None:
    await log_line(broker, "ERROR from before the engine")
    stale = {"alerts:window:Gone": "{}", "alerts:ahead:log.app": "0ther-9"}
    await broker.save_state({"alerts:cursor": "0ther-1", **stale})
    stop, task = await start(AlertEngine([rule(window=0.01)], broker))
    assert "of another epoch than the broker's" in caplog.text
    await log_line(broker, "ERROR new")
    assert [a["message"] for a in await next_alerts(alerts)] == ["ERROR new"]
    await finish(stop, task)
    assert not set(stale) & set(await broker.load_state("alerts:"))


async def test_a_pending_webhook_is_stored_with_its_alert_and_resumed_by_the_next_engine(
    broker: MemoryBroker, alerts: Subscription, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [503] * 1000
    hook = rule(webhook=receiver.url)
    engine = AlertEngine([hook], broker, retry_base_s=0.01)
    stop, task = await start(engine)
    await log_line(broker, ERROR_LINE)
    [alert] = await next_alerts(alerts)
    assert (await receiver.next())[0] == 503
    [(key, stored)] = (await broker.load_state("outbox:")).items()
    line_id = alert["key"].rsplit(".", 1)[1]
    assert key == f"outbox:{line_id}:Payments%20errors"
    assert json.loads(stored)["url"] == receiver.url
    await finish(stop, task)  # the delivery stays stored
    assert await broker.load_state("outbox:") != {}
    receiver.statuses = []
    while not receiver.bodies.empty():
        receiver.bodies.get_nowait()
    engine = AlertEngine([hook], broker, retry_base_s=0.01)
    stop, task = await start(engine)
    status, body = await receiver.next()
    assert (status, body["id"], body["line"]) == (200, line_id, ERROR_LINE)
    await until(lambda: engine.outbox.stats.pending == 0, "the delivery forgotten")
    await finish(stop, task)
    assert await broker.load_state("outbox:") == {}
    assert alerts.take() == []  # resuming the webhook raised no second alert


async def test_lines_past_the_rings_are_checked_from_the_database_once_and_the_cursor_passes_them(
    tmp_path: Path,
) -> None:
    broker = build_broker(f"sqlite:///{tmp_path}/pb.db", history=10)
    await broker.start()
    try:
        async with broker.subscribe(["ops.alerts"], Start()) as alerts:
            assert isinstance(alerts, Subscription)
            stop, task = await start(AlertEngine([rule(window=0.01)], broker))
            await log_line(broker, "ERROR before")
            await next_alerts(alerts)
            await finish(stop, task)
            for n in range(30):  # while the engine is down, three rings' worth
                line = "ERROR deep in the burst" if n == 3 else f"INFO filler {n}"
                await log_line(broker, line, level="info")
            await log_line(broker, "ERROR last")
            stop, task = await start(AlertEngine([rule(window=0.01)], broker))
            found = await next_alerts(alerts, 2)
            await finish(stop, task)
            assert [a["message"].split("\n")[0] for a in found] == [
                "ERROR deep in the burst",
                "ERROR last",
            ]
            assert alerts.take() == []
        state = await broker.load_state("alerts:")
        assert not [key for key in state if key.startswith("alerts:ahead:")]
        assert state["alerts:cursor"] == broker.channels()[0].last_id
    finally:
        await broker.close()


async def test_lines_a_catch_up_had_checked_before_a_crash_are_not_checked_again(
    tmp_path: Path,
) -> None:
    broker = build_broker(f"sqlite:///{tmp_path}/pb.db", history=10)
    await broker.start()
    try:
        cursor = await broker.publish("log.app", "log", {"line": "INFO start", "level": "info"})
        checked = await broker.publish("log.app", "log", {"line": "ERROR checked"})
        for n in range(20):
            await log_line(broker, f"INFO filler {n}", level="info")
        await log_line(broker, "ERROR new")
        # what a crash leaves behind after a catch-up had checked (and alerted) up to ``checked``
        await broker.save_state({"alerts:cursor": cursor.id, "alerts:ahead:log.app": checked.id})
        async with broker.subscribe(["ops.alerts"], Start()) as alerts:
            assert isinstance(alerts, Subscription)
            stop, task = await start(AlertEngine([rule(window=0.01)], broker))
            [alert] = await next_alerts(alerts)
            assert alert["message"] == "ERROR new"
            await log_line(broker, "ERROR after")  # its alert: the replay is over
            [after] = await next_alerts(alerts)
            assert after["message"].startswith("ERROR after")
            await finish(stop, task)
            assert alerts.take() == []
        state = await broker.load_state("alerts:")
        assert "alerts:ahead:log.app" not in state
    finally:
        await broker.close()
