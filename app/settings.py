"""Typed settings: one TOML file plus ``PULSEBOARD_*`` environment overrides.

``PULSEBOARD_SERVER__BIND=0.0.0.0:8000`` sets ``[server] bind``: sections and
keys are joined by a double underscore; a numeric part indexes an array of
tables (``PULSEBOARD_SOURCES__0__INTERVAL=0.1``). A value is read as a TOML
value when it parses as one (``15``, ``true``, ``["a", "b"]``) and as a plain
string otherwise. ``PULSEBOARD_URL`` and ``PULSEBOARD_TOKEN`` are the client
commands' (``publish``, ``subscribe``), not config keys: a shell that exports
them for the client can still run ``serve``.

Unknown keys and bad values are refused with a message that names the key:
Hypercorn's own loader ignores misspellings silently, ours must not.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from app.durations import parse_duration
from app.events import PayloadError, validate_channel, validate_pattern
from app.urls import check_origin, resolve_allowed_hosts

ENV_PREFIX = "PULSEBOARD_"
CLIENT_VARIABLES = frozenset({"PULSEBOARD_URL", "PULSEBOARD_TOKEN"})  # publish/subscribe's own
DEFAULT_CONFIG = Path("config/default.toml")

Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


class SettingsError(ValueError):
    """A config file or override we refuse; the message names the key."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    bind: str = "127.0.0.1:8000"
    heartbeat: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 15.0
    retry_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 2000
    max_lag: Count = 1000
    write_timeout: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 10.0
    max_body_bytes: Count = 1024 * 1024
    shutdown_grace: Annotated[float, msgspec.Meta(ge=0, le=60)] = 2.0
    body_timeout: Annotated[float, msgspec.Meta(ge=0.1, le=600)] = 10.0
    allowed_hosts: list[str] | None = None
    public_url: str | None = None
    cors_origins: list[str] = msgspec.field(default_factory=list)

    @property
    def host_names(self) -> tuple[str, ...]:
        """``allowed_hosts``, or the loopback names when bound to loopback (checked at load)."""
        return resolve_allowed_hosts(self.bind, self.allowed_hosts)

    @property
    def cors_origin_names(self) -> tuple[str, ...]:
        """``cors_origins`` normalised (checked at load)."""
        return tuple(check_origin(origin) for origin in self.cors_origins)


class RetentionSettings(_Section):
    max_events: Annotated[int, msgspec.Meta(ge=0)] = 100_000
    max_age: str | float = "7d"

    @property
    def max_age_s(self) -> float:
        """``max_age`` in seconds (checked at load)."""
        return parse_duration(self.max_age)


class BrokerSettings(_Section):
    url: str = "memory://"
    history: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    key_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "pulseboard"
    fanout_max: Annotated[int, msgspec.Meta(ge=100, le=10_000_000)] = 100_000
    timeout: Annotated[float, msgspec.Meta(ge=0.1, le=60)] = 5.0
    fsync: bool = False
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    max_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0

    @property
    def shared(self) -> bool:
        """False for memory:// and sqlite:// (one process's broker); True for a Redis."""
        return not self.url.startswith(("memory://", "sqlite://"))


class TokenSettings(_Section):
    token: Annotated[str, msgspec.Meta(min_length=8)]
    read: list[str] = msgspec.field(default_factory=list)
    publish: list[str] = msgspec.field(default_factory=list)
    metrics: bool = False


class AuthSettings(_Section):
    publish_tokens: list[Annotated[str, msgspec.Meta(min_length=8)]] = msgspec.field(
        default_factory=list
    )
    read_tokens: list[Annotated[str, msgspec.Meta(min_length=8)]] = msgspec.field(
        default_factory=list
    )
    tokens: list[TokenSettings] = msgspec.field(default_factory=list)
    tokens_file: str | None = None
    secret_key: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    allow_anonymous: bool = False
    cookie_secure: bool = False
    metrics_public: bool = False
    session_ttl: str | float = "12h"

    @property
    def session_ttl_s(self) -> float:
        """``session_ttl`` in seconds (checked at load)."""
        return parse_duration(self.session_ttl)


class LimitsSettings(_Section):
    publish_rate: Positive = 1000
    publish_burst: Count = 5000
    chat_rate: Positive = 2
    chat_burst: Count = 10
    streams_per_client: Count = 256
    channels_per_stream: Count = 64
    history_limit: Count = 1000
    form_fields: Count = 20
    body_bytes: dict[str, Count] = msgspec.field(
        default_factory=lambda: {"chat": 4096, "notify": 65536}
    )
    max_channels: Count = 10_000
    channel_idle_ttl: str = "7d"

    @property
    def channel_idle_ttl_s(self) -> float:
        """``channel_idle_ttl`` in seconds (validated at load)."""
        return parse_duration(self.channel_idle_ttl)


class LogSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: str | None = None


class ChannelSettings(_Section):
    name: str
    kind: str
    title: str | None = None


class AlertSettings(_Section):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    channel: str
    pattern: str
    notify: str
    level: str = "error"
    line_level: str | None = None
    webhook: str | None = None
    format: Literal["json", "slack", "discord", "ntfy"] = "json"
    cooldown: str | float | None = None
    window: Positive | None = None  # the older name of cooldown, in seconds
    webhook_max_age: str | float = "1h"

    @property
    def webhook_max_age_s(self) -> float:
        """``webhook_max_age`` in seconds (checked at load): how long a POST is retried."""
        return parse_duration(self.webhook_max_age)

    @property
    def cooldown_s(self) -> float:
        """``cooldown`` (or its older name ``window``) in seconds; 60 when neither is set."""
        if self.cooldown is not None:
            return parse_duration(self.cooldown)
        return 60.0 if self.window is None else self.window


class BoardSettings(_Section):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    title: str | None = None
    channels: list[str] = msgspec.field(default_factory=list)  # empty: every channel
    span: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    columns: Annotated[int, msgspec.Meta(ge=1, le=12)] = 3


class Settings(_Section):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    broker: BrokerSettings = msgspec.field(default_factory=BrokerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    channels: list[ChannelSettings] = msgspec.field(default_factory=list)
    sources: list[dict[str, Any]] = msgspec.field(default_factory=list)
    alerts: list[AlertSettings] = msgspec.field(default_factory=list)
    boards: list[BoardSettings] = msgspec.field(default_factory=list)


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read ``path`` (default ``config/default.toml`` when it exists), then env, then overrides.

    ``overrides`` is a nested dict merged last (tests and the CLI's ``--bind``).
    """
    raw = _read_toml(path)
    _apply_environment(raw, os.environ if environ is None else environ)
    if overrides:
        _merge(raw, overrides)
    return settings_from_dict(raw)


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Validate a nested dict as Settings; errors name the key, e.g. ``server.heartbeat``."""
    try:
        settings = msgspec.convert(raw, Settings, strict=True)
    except msgspec.ValidationError as error:
        raise SettingsError(_describe(str(error))) from None
    _check(settings)
    return settings


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return {}
        path = DEFAULT_CONFIG
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in CLIENT_VARIABLES:
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            raise SettingsError(f"{name}: empty key part")
        _set_path(raw, parts, _parse_env_value(text), name)


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(raw: dict[str, Any], parts: list[str], value: Any, name: str) -> None:
    node: Any = raw
    for index, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, name)
            continue
        default: Any = [] if parts[index + 1].isdigit() else {}
        node = node.setdefault(part, default)
    last = parts[-1]
    if isinstance(node, list):
        raise SettingsError(f"{name}: cannot replace a whole array entry, name a key inside it")
    if not isinstance(node, dict):
        raise SettingsError(f"{name}: {'.'.join(parts[:-1])} is not a table")
    node[last] = value


def _list_item(items: list[Any], part: str, name: str) -> Any:
    if not part.isdigit() or int(part) >= len(items):
        raise SettingsError(f"{name}: {part!r} is not an index of an existing array entry")
    return items[int(part)]


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _describe(message: str) -> str:
    """msgspec says "Expected `int` >= 1 - at `$.server.max_lag`"; say "server.max_lag: ..."."""
    text, _, where = message.rpartition(" - at `$.")
    where = where.rstrip("`") if text else ""
    text = text or message
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        key = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
        return f"{key}: unknown key"
    missing = _MISSING_FIELD.search(text)
    if missing:
        key = f"{where}.{missing.group(1)}" if where else missing.group(1)
        return f"{key}: required"
    return f"{where}: {text}" if where else text


def _check(settings: Settings) -> None:
    host, _, port = settings.server.bind.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"server.bind: expected HOST:PORT, got {settings.server.bind!r}")
    try:
        settings.server.host_names  # noqa: B018  # resolving it is the check
    except ValueError as error:
        raise SettingsError(f"server.allowed_hosts: {error}") from None
    try:
        settings.server.cors_origin_names  # noqa: B018  # normalising them is the check
    except ValueError as error:
        raise SettingsError(f"server.cors_origins: {error}") from None
    _check_duration("auth.session_ttl", settings.auth.session_ttl)
    if not settings.broker.url.startswith(
        ("memory://", "sqlite:///", "redis://", "rediss://", "unix://")
    ) or settings.broker.url in ("sqlite:///", "sqlite:////"):
        raise SettingsError(
            "broker.url: expected memory://, sqlite:///PATH.db or redis://HOST:PORT/DB, "
            f"got {settings.broker.url!r}"
        )
    _check_duration("broker.retention.max_age", settings.broker.retention.max_age)
    _check_duration("limits.channel_idle_ttl", settings.limits.channel_idle_ttl)
    _check_public_url(settings.server.public_url)
    _check_alert_names(settings.alerts)
    _check_boards(settings.boards)
    try:
        for index, channel in enumerate(settings.channels):
            validate_channel(channel.name, field=f"channels[{index}].name")
        for index, alert in enumerate(settings.alerts):
            validate_pattern(alert.channel, field=f"alerts[{index}].channel")
            validate_channel(alert.notify, field=f"alerts[{index}].notify")
    except PayloadError as error:
        raise SettingsError(str(error)) from None


def _check_public_url(url: str | None) -> None:
    if url is None:
        return
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok or parts.query or parts.fragment:
        raise SettingsError(
            f"server.public_url: expected http(s)://HOST[:PORT][/PATH] as browsers reach "
            f"this server, got {url!r}"
        )


def _check_alert_names(alerts: list[AlertSettings]) -> None:
    seen: dict[str, int] = {}
    for index, alert in enumerate(alerts):
        if alert.cooldown is not None and alert.window is not None:
            raise SettingsError(
                f"alerts[{index}].window: the older name of cooldown; set only cooldown"
            )
        if alert.cooldown is not None:
            _check_duration(f"alerts[{index}].cooldown", alert.cooldown)
        _check_duration(f"alerts[{index}].webhook_max_age", alert.webhook_max_age)
        first = seen.setdefault(alert.name, index)
        if first != index:
            raise SettingsError(
                f"alerts[{index}].name: {alert.name!r} is already the name of alerts[{first}]"
            )


def _check_boards(boards: list[BoardSettings]) -> None:
    seen: dict[str, int] = {}
    for index, board in enumerate(boards):
        first = seen.setdefault(board.name, index)
        if first != index:
            raise SettingsError(
                f"boards[{index}].name: {board.name!r} is already the name of boards[{first}]"
            )
        try:
            for pattern in board.channels:
                validate_pattern(pattern, field=f"boards[{index}].channels")
            for key in board.span:
                validate_pattern(key, field=f"boards[{index}].span")
        except PayloadError as error:
            raise SettingsError(str(error)) from None
        for key, (columns, rows) in board.span.items():
            if not (1 <= columns <= board.columns and 1 <= rows <= 12):
                raise SettingsError(
                    f"boards[{index}].span.{key}: expected [columns 1..{board.columns}, "
                    f"rows 1..12], got [{columns}, {rows}]"
                )


def _check_duration(key: str, text: str | float) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise SettingsError(f"{key}: {error}") from None
    if seconds <= 0:
        raise SettingsError(f"{key}: expected a duration above 0, got {text!r}")
