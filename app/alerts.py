"""Alerts on logs: ``[[alerts]]`` rules that watch log channels for a pattern.

A matching log line becomes a ``notify`` event on the rule's notify channel
(titled with the rule's ``name``, at the rule's ``level``, carrying the line
and an absolute link to it on the log page) and, when the rule has a
``webhook``, a POST to that URL in the rule's ``format`` (app/webhooks.py),
through the stored outbox (app/outbox.py).

The engine is a durable consumer: it keeps, in the broker's state, a cursor
(``alerts:cursor``, the id of the last event it handled) and each open
cooldown (``alerts:window:<rule>``). The cursor goes with each alert's notify
event (one atomic publish, with the webhook's outbox entry) and after each
batch, so a restart neither alerts twice on a line nor misses the lines
published while it was down.

Deliberate oddities:
- ``cooldown`` is the minimum time between two alerts of a rule (``window``
  is its older name): the first match alerts at once, later matches in the
  cooldown are counted, and when it ends one more alert carries the latest
  line and the count of suppressed matches. A quiet cooldown sends nothing.
- Each alert's ``key`` names the rule and the matched line's event id, so an
  acknowledgement (app/acks.py: the same notification again, tagged
  ``acknowledged``) replaces exactly that alert on every dashboard.
- Patterns are RE2 (``google-re2``): user regexes run in linear time, so a
  rule like ``(a+)+$`` cannot stall the server.
- Webhook POSTs run as the outbox's tasks beside the subscription, so a slow
  or dead receiver never delays the next alert.
- A cursor of another epoch (memory:// restarted, Redis flushed) names no
  position: the engine starts at the live end, and says so.
- Lines its rings no longer hold are checked from history, channel by
  channel, out of broker order: how far each such channel was checked ahead
  of the cursor is stored too (``alerts:ahead:<channel>``) until the cursor
  passes it, so a crash during that catch-up alerts on none of them twice.
- Cooldowns are stored with wall-clock times: one that ended while the
  server was down sends its summary at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import re2

from app.acks import ALERT_TAG
from app.broker.base import Broker, BrokerError, Feed, Start
from app.broker.hub import SubscriberLagging
from app.events import (
    BUILTIN_KINDS,
    LEVEL_ORDER,
    Event,
    PayloadError,
    State,
    format_event_id,
    parse_event_id,
    pattern_matches,
)
from app.outbox import PREFIX as OUTBOX_PREFIX
from app.outbox import RETRY_BASE_S, Outbox, OutboxStats
from app.settings import AlertSettings, SettingsError
from app.sources.base import pause_unless_stopped
from app.webhooks import WebhookFormat, ntfy_target, webhook_request

log = logging.getLogger("pulseboard.alerts")

_NOTIFY = next(kind for kind in BUILTIN_KINDS if kind.name == "notify")
MESSAGE_MAX = 3800
TITLE_MAX = 200
CATCH_UP_MAX = 100_000
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
NOTIFY_LEVELS = {"info", "success", "warning", "warn", "error", "critical"}
KEY_NAME_MAX = 28
STATE_PREFIX = "alerts:"
CURSOR_KEY = "alerts:cursor"
WINDOW_PREFIX = "alerts:window:"
AHEAD_PREFIX = "alerts:ahead:"
_KEY_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class AlertRule:
    """One validated ``[[alerts]]`` entry; ``index`` is its place in the config."""

    index: int
    name: str
    channel: str
    pattern: str
    notify: str
    level: str
    line_level: str | None
    webhook: str | None
    format: WebhookFormat
    cooldown_s: float
    webhook_max_age_s: float
    regex: Any = field(repr=False, compare=False)

    @classmethod
    def from_settings(cls, index: int, rule: AlertSettings) -> AlertRule:
        """Compile and check a rule; errors name the key, e.g. ``alerts[0].pattern``."""
        where = f"alerts[{index}]"
        if rule.level not in NOTIFY_LEVELS:
            levels = ", ".join(sorted(NOTIFY_LEVELS))
            raise SettingsError(f"{where}.level: expected one of {levels}, got {rule.level!r}")
        if rule.line_level is not None and rule.line_level not in LEVEL_ORDER:
            levels = ", ".join(LEVEL_ORDER)
            raise SettingsError(
                f"{where}.line_level: expected one of {levels}, got {rule.line_level!r}"
            )
        _check_webhook(where, rule)
        return cls(
            index=index,
            name=rule.name,
            channel=rule.channel,
            pattern=rule.pattern,
            notify=rule.notify,
            level="warning" if rule.level == "warn" else rule.level,
            line_level=rule.line_level,
            webhook=rule.webhook,
            format=rule.format,
            cooldown_s=rule.cooldown_s,
            webhook_max_age_s=rule.webhook_max_age_s,
            regex=compile_pattern(rule.pattern, f"{where}.pattern"),
        )

    def matches(self, event: Event) -> bool:
        """True for a log event on one of the rule's channels, at its level, matching."""
        if event.kind != "log":
            return False
        if self.line_level is not None:
            level = event.data.get("level")
            if level is None or LEVEL_ORDER[level] < LEVEL_ORDER[self.line_level]:
                return False
        return self.regex.search(event.data["line"]) is not None


def _check_webhook(where: str, rule: AlertSettings) -> None:
    if rule.webhook is None:
        return
    if not is_http_url(rule.webhook):
        raise SettingsError(f"{where}.webhook: expected an http(s) URL, got {rule.webhook!r}")
    if rule.format == "ntfy" and ntfy_target(rule.webhook) is None:
        raise SettingsError(
            f"{where}.webhook: format ntfy needs the topic URL (https://ntfy.sh/TOPIC, "
            f"topic of letters, digits, - and _), got {rule.webhook!r}"
        )


def is_http_url(text: str) -> bool:
    """True for ``http(s)://host...``: what a webhook POST can reach."""
    try:
        url = urlsplit(text)
        return url.scheme in ("http", "https") and bool(url.hostname) and url.port != 0
    except ValueError:  # a bad port or bracket
        return False


def check_notify_channels(rules: Sequence[AlertSettings], kinds: Mapping[str, str]) -> None:
    """Refuse, naming the key, a rule whose ``notify`` channel is of another kind than notify.

    ``kinds`` maps the declared channels (``[[channels]]`` and sources) to their kind;
    an undeclared channel becomes a notify channel on the first alert.
    """
    for index, rule in enumerate(rules):
        kind = kinds.get(rule.notify, "notify")
        if kind != "notify":
            raise SettingsError(
                f"alerts[{index}].notify: {rule.notify!r} is a {kind} channel; "
                "alerts publish notifications, so name a notify channel"
            )


def compile_pattern(pattern: str, key: str) -> Any:
    """Compile a user pattern with RE2 (linear time); errors are SettingsErrors naming ``key``."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args else "invalid"
        raise SettingsError(f"{key}: not a valid RE2 pattern: {reason}") from None


@dataclass(frozen=True)
class Alert:
    """What to send: the matching log event and how many matches were held back before it."""

    rule: AlertRule
    event: Event
    suppressed: int = 0


@dataclass
class AlertWindow:
    """A rule's cooldown: one alert per ``cooldown_s``, the rest counted (pure, clock passed in)."""

    rule: AlertRule
    opened_at: float | None = None
    suppressed: int = 0
    latest: Event | None = None

    @property
    def deadline(self) -> float | None:
        """When the open window closes, or None when no window is open."""
        return None if self.opened_at is None else self.opened_at + self.rule.cooldown_s

    def offer(self, event: Event, now: float) -> Alert | None:
        """A match at ``now``: the alert to send now, or None when it is held back and counted."""
        if self.opened_at is not None:
            self.suppressed += 1
            self.latest = event
            return None
        self.opened_at = now
        return Alert(self.rule, event)

    def close_if_due(self, now: float) -> Alert | None:
        """At the window's end: the summary of held-back matches, if there were any."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        if self.latest is None:
            self.opened_at = None
            return None
        alert = Alert(self.rule, self.latest, self.suppressed)
        self.opened_at, self.suppressed, self.latest = now, 0, None
        return alert


def window_state(window: AlertWindow, now: float, wall_now: float) -> str | None:
    """A cooldown as stored (JSON, its opening as a UNIX time); None when none is open.

    ``now`` is the engine's clock (monotonic), ``wall_now`` the UNIX time at that moment.
    """
    if window.opened_at is None:
        return None
    latest = window.latest
    return json.dumps(
        {
            "opened": wall_now - (now - window.opened_at),
            "suppressed": window.suppressed,
            "latest": None if latest is None else {**latest.as_json_dict(), "seq": latest.seq},
        },
        ensure_ascii=False,
    )


def restore_window(window: AlertWindow, text: str, now: float, wall_now: float) -> None:
    """Reopen a stored cooldown (see :func:`window_state`) on the engine's clock.

    Raises:
        ValueError: ``text`` is not a stored cooldown.
    """
    try:
        stored = json.loads(text)
        opened_at = now - (wall_now - float(stored["opened"]))
        suppressed = int(stored["suppressed"])
        raw = stored["latest"]
        latest = (
            None
            if raw is None
            else Event(
                raw["id"], raw["channel"], raw["kind"], raw["time"], raw["data"], raw["seq"], 0
            )
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a stored cooldown: {error}") from None
    window.opened_at, window.suppressed, window.latest = opened_at, suppressed, latest


def alert_title(alert: Alert) -> str:
    """The rule's name, plus the count of held-back matches for a summary."""
    title = alert.rule.name
    return f"{title} (+{alert.suppressed} more)" if alert.suppressed else title


def alert_key(rule: AlertRule, event: Event) -> str:
    """The notification ``key`` of one alert: the rule's name and the matched line's event id."""
    name = _KEY_JUNK.sub("-", rule.name.lower()).strip("-")[:KEY_NAME_MAX] or "rule"
    return f"alert.{name}.{event.id}"


def idempotency_key(rule: AlertRule, event: Event) -> str:
    """The ``Idempotency-Key`` of an alert's webhook POSTs: the line's event id and the rule.

    Unique per alert (one line can raise an alert in several rules; names are
    unique) and the same for every attempt, before and after restarts.

    >>> rule = AlertRule.from_settings(0, AlertSettings(
    ...     name="Disk full!", channel="log.*", pattern="x", notify="ops.alerts"))
    >>> idempotency_key(rule, Event("5f3a-42", "log.app", "log", 0.0, {}, 42, 0))
    '5f3a-42:Disk%20full%21'
    """
    return f"{event.id}:{quote(rule.name, safe='')}"


def line_link(base_url: str, event: Event) -> str:
    """The absolute link to a log line: its context view, anchored at the line's row.

    The context view (``/channels/<c>/lines/<id>``) finds the line however far back it
    is, where the channel's page shows only the newest lines.
    """
    line = quote(event.id, safe="-_.~:")
    return f"{base_url}/channels/{event.channel}/lines/{line}#line-{line}"


def notify_payload(alert: Alert, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """The notify event a user sees: the rule's name as title, the line as message."""
    event, rule = alert.event, alert.rule
    message = _clip(event.data["line"], MESSAGE_MAX)
    if alert.suppressed:
        lines = "line" if alert.suppressed == 1 else "lines"
        held_back = f"{alert.suppressed} more matching {lines} in {rule.cooldown_s:g}s"
        message += f"\n\n{held_back}; this is the latest."
    tags = [ALERT_TAG, _clip(event.channel, 50)]
    if event.data.get("file"):
        tags.append(_clip(str(event.data["file"]), 50))
    payload = {
        "message": message or "(empty line)",
        "title": _clip(alert_title(alert), TITLE_MAX),
        "level": rule.level,
        "tags": tags,
        "link": line_link(base_url, event),
        "key": alert_key(rule, event),
    }
    return _NOTIFY.validate(payload)


def alert_facts(alert: Alert, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """What every webhook format says about an alert; ``format = "json"`` posts it as is."""
    event, rule = alert.event, alert.rule
    return {
        "rule": rule.name,
        "title": alert_title(alert),
        "alert_level": rule.level,
        "pattern": rule.pattern,
        "channel": event.channel,
        "file": event.data.get("file"),
        "line": event.data["line"],
        "level": event.data.get("level"),
        "id": event.id,
        "time": event.time,
        "suppressed": alert.suppressed,
        "link": line_link(base_url, event),
        "key": alert_key(rule, event),
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class AlertStats:
    """Counters for logs and metrics (the webhooks' are the outbox's)."""

    matches: int = 0
    notified: int = 0


class AlertEngine:
    """Follows the rules' log channels through the broker and sends alerts.

    ``watching`` is set once the engine follows its channels: lines published
    before that, and after the stored cursor, are caught up first.

    Example (what the app does at start-up)::

        engine = AlertEngine(settings.alerts, broker)
        task = asyncio.create_task(engine.run(stop))
    """

    def __init__(
        self,
        rules: Sequence[AlertSettings],
        broker: Broker,
        *,
        base_url: str = DEFAULT_BASE_URL,
        clock: Callable[[], float] = time.monotonic,
        webhook_timeout_s: float = 5.0,
        retry_base_s: float = RETRY_BASE_S,
        drain_s: float = 1.0,
        resubscribe_s: float = 1.0,
        outbox_stats: OutboxStats | None = None,
    ) -> None:
        self.rules = [AlertRule.from_settings(index, rule) for index, rule in enumerate(rules)]
        self.broker = broker
        self.base_url = base_url
        self.clock = clock
        self.drain_s = drain_s
        self.resubscribe_s = resubscribe_s
        self.stats = AlertStats()
        self._windows = [AlertWindow(rule) for rule in self.rules]
        self._client = httpx.AsyncClient(timeout=webhook_timeout_s)
        self.outbox = Outbox(
            self._client, self._save, retry_base_s=retry_base_s, stats=outbox_stats
        )
        self._restored = False
        self._position: str | None = None  # the last event handled in broker order
        self._saved: str | None = None
        self._dirty: set[int] = set()  # windows changed since they were stored
        self._seen: dict[str, int] = {}  # per channel, the last seq checked (no double checks)
        self._ahead: set[str] = set()  # channels stored as checked ahead of the cursor
        self._caught_up = False  # a catch-up moved channels ahead: store them
        self.watching = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set (call once); POSTs in flight get ``drain_s`` to finish."""
        if not self.rules:
            await stop.wait()
            return
        async with self._client:
            try:
                while not stop.is_set():
                    await self._follow_or_wait(stop)
            finally:
                await self.outbox.drain(self.drain_s)
                if self._restored:
                    await self._save_progress()

    def watches(self, channel: str) -> bool:
        """True when a rule's channel pattern matches ``channel``."""
        return any(pattern_matches(rule.channel, channel) for rule in self.rules)

    async def _follow_or_wait(self, stop: asyncio.Event) -> None:
        """Follow the channels; when the broker fails or ends us, wait ``resubscribe_s``."""
        try:
            if not self._restored:
                await self._restore()
            if await self._follow(stop) is None:
                return
        except BrokerError as error:
            log.warning("alerts: broker unavailable (%s); subscribing again", error)
        await pause_unless_stopped(stop, self.resubscribe_s)

    async def _restore(self) -> None:
        """Take up the stored cursor and cooldowns, and resume the pending webhook deliveries."""
        stored = await self.broker.load_state(STATE_PREFIX)
        pending = await self.broker.load_state(OUTBOX_PREFIX)
        cursor = stored.pop(CURSOR_KEY, None)
        ahead = {k: stored.pop(k) for k in [k for k in stored if k.startswith(AHEAD_PREFIX)]}
        if cursor is not None:
            parsed = parse_event_id(cursor)
            if parsed is not None and parsed[0] == self.broker.epoch:
                self._position = self._saved = cursor
            else:
                log.warning(
                    "alerts: the stored cursor %s is of another epoch than the broker's %s "
                    "(its events are gone); starting at the live end",
                    cursor,
                    self.broker.epoch,
                )
        stale = self._restore_ahead(ahead) + self._restore_windows(stored)
        if stale:
            await self._save(dict.fromkeys(stale))
        resumed = await self.outbox.resume(pending)
        self._restored = True
        log.info(
            "alerts: %s; %d webhook deliveries pending",
            f"resuming after {self._position}" if self._position else "starting at the live end",
            resumed,
        )

    def _restore_ahead(self, stored: dict[str, str]) -> list[str]:
        """Channels a catch-up had checked ahead of the cursor; the keys of no use any more."""
        stale = []
        for key, event_id in stored.items():
            parsed = parse_event_id(event_id)
            if self._position is None or parsed is None or parsed[0] != self.broker.epoch:
                stale.append(key)
                continue
            channel = key.removeprefix(AHEAD_PREFIX)
            self._seen[channel] = parsed[1]
            self._ahead.add(channel)
        return stale

    def _restore_windows(self, stored: dict[str, str]) -> list[str]:
        """Reopen stored cooldowns; the keys of those no rule has any more (or unreadable)."""
        by_key = {WINDOW_PREFIX + quote(w.rule.name, safe=""): w for w in self._windows}
        stale = []
        for key, text in stored.items():
            window = by_key.get(key)
            try:
                if window is None:
                    raise ValueError("no rule of that name")
                restore_window(window, text, self.clock(), time.time())
            except ValueError as error:
                log.info("alerts: dropping stored %s: %s", key, error)
                stale.append(key)
        return stale

    async def _follow(self, stop: asyncio.Event) -> str | None:
        """Check events until stopped or behind (None) or the broker ends us (its reason)."""
        patterns = sorted({rule.channel for rule in self.rules})
        start = Start(after=self._position) if self._position else Start()
        self._position = self._position or self._live_end()
        async with self.broker.subscribe(patterns, start) as subscription:
            self.watching.set()
            stop_waker = asyncio.create_task(_wake_on(stop, subscription))
            try:
                if subscription.gap_channels:
                    await self._catch_up(subscription.gap_channels)
                await self._save_progress()
                await self._watch(subscription, stop)
            except SubscriberLagging as error:
                log.warning("alerts fell behind (%s); following again from the cursor", error)
                return None
            finally:
                stop_waker.cancel()
            return None if stop.is_set() else subscription.closed_reason

    def _live_end(self) -> str:
        """The newest id the broker has handed out: a position before anything to come."""
        seqs = (parse_event_id(c.last_id) for c in self.broker.channels() if c.last_id)
        newest = max((parsed[1] for parsed in seqs if parsed is not None), default=0)
        return format_event_id(self.broker.epoch, newest)

    async def _watch(self, subscription: Feed, stop: asyncio.Event) -> None:
        while not stop.is_set() and subscription.closed_reason is None:
            for event in await subscription.next_batch(timeout_s=self._until_deadline()):
                self._position = event.id  # broker order: everything before it is handled
                await self._check(event)
            for index, window in enumerate(self._windows):
                if alert := window.close_if_due(self.clock()):
                    self._dirty.add(index)
                    await self._send(alert)
            await self._save_progress()

    async def _catch_up(self, channels: Sequence[str]) -> None:
        """Check, from the broker's history, the lines after the cursor its rings no longer hold.

        Out of broker order, so the cursor stays; the subscription's replay that
        follows skips what this checked.
        """
        for channel in channels:
            if not self.watches(channel):
                continue
            page = await self.broker.history(channel, self._position, CATCH_UP_MAX)
            if page.gap:
                log.warning("alerts: lines of %s were dropped before they were checked", channel)
            for event in page.events:
                await self._check(event)
        self._caught_up = True

    def _until_deadline(self) -> float | None:
        """Seconds until the first open window closes, None when none is open."""
        deadlines = [w.deadline for w in self._windows if w.deadline is not None]
        return max(0.0, min(deadlines) - self.clock()) if deadlines else None

    async def _check(self, event: Event) -> None:
        if event.seq <= self._seen.get(event.channel, 0):
            return  # a catch-up checked it already
        self._seen[event.channel] = event.seq
        for index, window in enumerate(self._windows):
            if window.rule.matches(event):
                self.stats.matches += 1
                self._dirty.add(index)
                if summary := window.close_if_due(self.clock()):  # ended while we were away
                    await self._send(summary)
                if alert := window.offer(event, self.clock()):
                    await self._send(alert)

    def _progress(self) -> dict[str, str | None]:
        """The cursor, the channels checked ahead of it and the changed cooldowns, as stored."""
        state: dict[str, str | None] = {}
        if self._position is not None:
            state[CURSOR_KEY] = self._position
            state.update(self._ahead_state(self._position))
        now, wall_now = self.clock(), time.time()
        for index in self._dirty:
            window = self._windows[index]
            state[WINDOW_PREFIX + quote(window.rule.name, safe="")] = window_state(
                window, now, wall_now
            )
        return state

    def _ahead_state(self, position: str) -> dict[str, str | None]:
        """``alerts:ahead:<channel>`` for each channel checked past ``position`` (None: no more)."""
        parsed = parse_event_id(position)
        at = parsed[1] if parsed is not None else 0
        state: dict[str, str | None] = {
            AHEAD_PREFIX + channel: None
            for channel in self._ahead
            if self._seen.get(channel, 0) <= at
        }
        if self._caught_up or self._ahead:
            for channel, seq in self._seen.items():
                if seq > at:
                    state[AHEAD_PREFIX + channel] = format_event_id(self.broker.epoch, seq)
        return state

    def _stored(self, state: Mapping[str, str | None]) -> None:
        """``state`` (from :meth:`_progress`) is stored: nothing changed is unsaved any more."""
        self._saved = state.get(CURSOR_KEY, self._saved)
        self._dirty.clear()
        for key, value in state.items():
            if key.startswith(AHEAD_PREFIX):
                channel = key.removeprefix(AHEAD_PREFIX)
                if value is None:
                    self._ahead.discard(channel)
                else:
                    self._ahead.add(channel)
        self._caught_up = False

    async def _save_progress(self) -> None:
        """Store the cursor and cooldowns once per batch, when they changed."""
        if self._position == self._saved and not self._dirty and not self._caught_up:
            return
        state = self._progress()
        if await self._save(state):
            self._stored(state)

    async def _save(self, state: State) -> bool:
        """Store ``state``; False (and a warning) when the broker cannot now."""
        try:
            await self.broker.save_state(state)
        except BrokerError as error:
            log.warning("alerts: state not stored (%s); a restart may repeat work", error)
            return False
        return True

    async def _send(self, alert: Alert) -> None:
        """Publish the notification, with the cursor and the webhook's outbox entry, then POST."""
        rule = alert.rule
        delivery = None
        state = self._progress()
        if rule.webhook is not None:
            facts = alert_facts(alert, self.base_url)
            url, body = webhook_request(rule.format, rule.webhook, facts)
            key = idempotency_key(rule, alert.event)
            delivery = self.outbox.new(key, url, rule.format, body, rule.webhook_max_age_s)
            state[delivery.state_key] = delivery.to_json()
        try:
            payload = notify_payload(alert, self.base_url)
            await self.broker.publish(rule.notify, "notify", payload, state)
            self.stats.notified += 1
            self._stored(state)
        except (BrokerError, PayloadError) as error:
            log.error("alert of rule %r not published to %s: %s", rule.name, rule.notify, error)
            if delivery is not None:
                await self._save({delivery.state_key: delivery.to_json()})
        if delivery is not None:
            self.outbox.start(delivery)


async def _wake_on(stop: asyncio.Event, subscription: Feed) -> None:
    await stop.wait()
    subscription.interrupt()
