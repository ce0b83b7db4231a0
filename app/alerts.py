"""Alerts on logs: ``[[alerts]]`` rules that watch log channels for a pattern.

A matching log line becomes a ``notify`` event on the rule's notify channel
(titled with the rule's ``name``, at the rule's ``level``, carrying the line
and an absolute link to it on the log page) and, when the rule has a
``webhook``, a POST to that URL in the rule's ``format`` (app/webhooks.py),
retried with exponential backoff.

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
- Webhook POSTs run as tasks beside the subscription, so a slow receiver never
  delays the next alert; at most one per rule per window is in flight.
"""

from __future__ import annotations

import asyncio
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
from app.broker.base import Broker, BrokerError, ChannelInfo, Feed, Start
from app.broker.hub import SubscriberLagging
from app.events import BUILTIN_KINDS, LEVEL_ORDER, Event, PayloadError, pattern_matches
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


def alert_title(alert: Alert) -> str:
    """The rule's name, plus the count of held-back matches for a summary."""
    title = alert.rule.name
    return f"{title} (+{alert.suppressed} more)" if alert.suppressed else title


def alert_key(rule: AlertRule, event: Event) -> str:
    """The notification ``key`` of one alert: the rule's name and the matched line's event id."""
    name = _KEY_JUNK.sub("-", rule.name.lower()).strip("-")[:KEY_NAME_MAX] or "rule"
    return f"alert.{name}.{event.id}"


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
    """Counters for logs and metrics."""

    matches: int = 0
    notified: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0


class AlertEngine:
    """Follows the rules' log channels through the broker and sends alerts.

    ``watching`` is set once the engine follows its channels: lines published
    before that are not checked.

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
        retry_delays_s: Sequence[float] = (1.0, 2.0, 4.0),
        drain_s: float = 1.0,
        resubscribe_s: float = 1.0,
    ) -> None:
        self.rules = [AlertRule.from_settings(index, rule) for index, rule in enumerate(rules)]
        self.broker = broker
        self.base_url = base_url
        self.clock = clock
        self.retry_delays_s = tuple(retry_delays_s)
        self.drain_s = drain_s
        self.resubscribe_s = resubscribe_s
        self.stats = AlertStats()
        self._windows = [AlertWindow(rule) for rule in self.rules]
        self._posts: set[asyncio.Task[None]] = set()
        self._cursors: dict[str, str | None] = {}
        self.watching = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=webhook_timeout_s)

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
                await self._drain()

    def watches(self, channel: str) -> bool:
        """True when a rule's channel pattern matches ``channel``."""
        return any(pattern_matches(rule.channel, channel) for rule in self.rules)

    async def _follow_or_wait(self, stop: asyncio.Event) -> None:
        """Follow the channels; when the broker fails or ends us, wait ``resubscribe_s``."""
        try:
            if await self._follow(stop) is None:
                return
        except BrokerError as error:
            log.warning("alerts: broker unavailable (%s); subscribing again", error)
        await pause_unless_stopped(stop, self.resubscribe_s)

    async def _follow(self, stop: asyncio.Event) -> str | None:
        """Check events until stopped (None) or the broker ends the subscription (its reason)."""
        self._cursors = {c.name: c.last_id for c in self._watched_channels()}
        patterns = sorted({rule.channel for rule in self.rules})
        async with self.broker.subscribe(patterns, Start()) as subscription:
            self.watching.set()
            stop_waker = asyncio.create_task(_wake_on(stop, subscription))
            try:
                await self._watch(subscription, stop)
            except SubscriberLagging as error:
                log.warning("alerts fell behind (%s); catching up from history", error)
                await self._catch_up()
            finally:
                stop_waker.cancel()
            return None if stop.is_set() else subscription.closed_reason

    async def _watch(self, subscription: Feed, stop: asyncio.Event) -> None:
        while not stop.is_set() and subscription.closed_reason is None:
            for event in await subscription.next_batch(timeout_s=self._until_deadline()):
                await self._check(event)
            for window in self._windows:
                if alert := window.close_if_due(self.clock()):
                    await self._send(alert)

    def _watched_channels(self) -> list[ChannelInfo]:
        return [info for info in self.broker.channels() if self.watches(info.name)]

    async def _catch_up(self) -> None:
        """Check, from the broker's history, the lines a burst pushed past our cursor."""
        for channel in [c.name for c in self._watched_channels()]:
            page = await self.broker.history(channel, self._cursors.get(channel), CATCH_UP_MAX)
            if page.gap:
                log.warning("alerts: lines of %s were dropped before they were checked", channel)
            for event in page.events:
                await self._check(event)

    def _until_deadline(self) -> float | None:
        """Seconds until the first open window closes, None when none is open."""
        deadlines = [w.deadline for w in self._windows if w.deadline is not None]
        return max(0.0, min(deadlines) - self.clock()) if deadlines else None

    async def _check(self, event: Event) -> None:
        self._cursors[event.channel] = event.id
        for window in self._windows:
            if window.rule.matches(event):
                self.stats.matches += 1
                if alert := window.offer(event, self.clock()):
                    await self._send(alert)

    async def _send(self, alert: Alert) -> None:
        try:
            payload = notify_payload(alert, self.base_url)
            await self.broker.publish(alert.rule.notify, "notify", payload)
            self.stats.notified += 1
        except (BrokerError, PayloadError) as error:
            log.error(
                "alert of rule %r not published to %s: %s",
                alert.rule.name,
                alert.rule.notify,
                error,
            )
        if alert.rule.webhook is not None:
            facts = alert_facts(alert, self.base_url)
            url, body = webhook_request(alert.rule.format, alert.rule.webhook, facts)
            task = asyncio.create_task(self._post(url, body))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def _post(self, url: str, body: Any) -> None:
        for attempt, delay in enumerate((*self.retry_delays_s, None), start=1):
            outcome, retry = await _post_once(self._client, url, body)
            if outcome is None:
                self.stats.webhooks_sent += 1
                return
            if delay is None or not retry:
                break
            log.info(
                "webhook %s attempt %d failed (%s); retrying in %gs", url, attempt, outcome, delay
            )
            await asyncio.sleep(delay)
        self.stats.webhooks_failed += 1
        log.error("webhook %s failed after %d attempts: %s", url, attempt, outcome)

    async def _drain(self) -> None:
        if not self._posts:
            return
        _done, pending = await asyncio.wait(self._posts, timeout=self.drain_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _post_once(client: httpx.AsyncClient, url: str, body: Any) -> tuple[str | None, bool]:
    """POST once: (None, _) on success, else (why it failed, whether a retry may help)."""
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}", True
    status = response.status_code
    if status >= 400:
        return f"HTTP {status}", status >= 500 or status in (408, 429)
    return None, False


async def _wake_on(stop: asyncio.Event, subscription: Feed) -> None:
    await stop.wait()
    subscription.interrupt()
