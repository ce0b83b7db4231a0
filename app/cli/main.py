"""The ``pulseboard`` command (also ``python -m app``).

User errors (a bad config, an unreachable server) print one line and exit
with status 2; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, get_args

import click
import httpx

from app.cli.subscribe import (
    READ_TIMEOUT_S,
    Follower,
    FollowRequest,
    SubscribeError,
    error_text,
)
from app.cli.terminal import event_line
from app.events import NotifyLevel, PayloadError, validate_pattern
from app.serve.logs import configure_logging
from app.settings import Settings, SettingsError, load_settings
from app.sources.base import SourceConfigError, configure_sources, load_source_types

USAGE_ERROR = 2
INTERRUPTED = 130
NOTIFY_LEVELS = get_args(NotifyLevel)


def fail(message: str) -> NoReturn:
    """Print ``message`` to stderr and exit with the usage-error status."""
    click.echo(f"pulseboard: {message}", err=True)
    sys.exit(USAGE_ERROR)


def read_settings(config: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from ``config`` and the environment, or a clean exit naming the bad key."""
    try:
        settings = load_settings(config, overrides=overrides)
        configure_sources(settings.sources, load_source_types())
    except (SettingsError, SourceConfigError) as error:
        fail(str(error))
    return settings


config_option = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML config file (default: config/default.toml).",
)


url_option = click.option(
    "--url",
    envvar="PULSEBOARD_URL",
    show_envvar=True,
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Server URL.",
)


def token_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--token``, from ``PULSEBOARD_TOKEN`` when not given."""
    return click.option(
        "--token", envvar="PULSEBOARD_TOKEN", show_envvar=True, help=f"Bearer token for {what}."
    )


@click.group()
@click.version_option(package_name="pulseboard", prog_name="pulseboard")
def main() -> None:
    """Pulseboard: a real-time dashboard server."""


@main.command()
@config_option
@click.option("--bind", help="HOST:PORT to listen on (overrides server.bind).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--no-sources", is_flag=True, help="Serve streams only; run no sources.")
@click.option("--log-json", is_flag=True, help="Log JSON lines (overrides log.format).")
@click.option("--listen-fd", type=int, hidden=True, help="Serve on this inherited socket.")
def serve(
    config: Path | None,
    bind: str | None,
    workers: int,
    no_sources: bool,
    log_json: bool,
    listen_fd: int | None,
) -> None:
    """Serve the dashboard, the stream and the API.

    On redis:// the configured sources run in one process of the deployment
    (a Redis lease picks it); ``--workers N`` starts N such processes on one socket.
    """
    overrides: dict[str, Any] = {}
    if bind:
        overrides["server"] = {"bind": bind}
    if log_json:
        overrides["log"] = {"format": "json"}
    settings = read_settings(config, overrides)
    if workers > 1 and not settings.broker.shared:
        fail(
            f"--workers {workers} needs a shared broker: memory:// and sqlite:// live in one "
            "process, so set broker.url to redis://HOST:PORT/DB"
        )
    configure_logging(settings.log.format, settings.log.level)
    if listen_fd is None:
        _check_broker(settings)
    if workers > 1:
        from app.serve.workers import serve_workers

        flags = [
            flag for flag, on in (("--no-sources", no_sources), ("--log-json", log_json)) if on
        ]
        config_args = ["--config", str(config)] if config else []
        if settings.auth.secret_key is None:
            # one key for every worker: a session cookie signed by one is valid on the others
            os.environ["PULSEBOARD_AUTH__SECRET_KEY"] = secrets.token_urlsafe(32)
        try:
            serve_workers(settings.server.bind, workers, [*config_args, *flags])
        except OSError as error:
            fail(f"server.bind: cannot listen on {settings.server.bind}: {error}")
    _run(settings, run_sources=not no_sources, listen_fd=listen_fd)


def _check_broker(settings: Settings) -> None:
    """Refuse to start, naming the key, when broker.url names an unusable database or Redis."""
    problem = _broker_problem(settings)
    if problem:
        fail(f"broker.url: {problem}")


def _broker_problem(settings: Settings) -> str | None:
    """Why the broker ``broker.url`` names cannot be used (corrupt, locked, unreachable)."""
    if settings.broker.url.startswith("sqlite://"):
        from app.broker.sqlite_store import check_database

        return check_database(settings.broker.url)
    if not settings.broker.shared:
        return None
    from app.broker.redis import reachable

    return reachable(settings.broker.url, settings.broker.timeout)


def _run(settings: Settings, *, run_sources: bool, listen_fd: int | None = None) -> None:
    import uvloop

    from app.serve.factory import create_app, runtime_of
    from app.serve.lease import run_sources_under_lease
    from app.serve.server import serve as serve_app

    shared = settings.broker.shared
    try:
        app = create_app(settings, run_sources=run_sources and not shared)
    except (SettingsError, SourceConfigError, ValueError) as error:
        fail(str(error))
    if run_sources and shared:
        run_sources_under_lease(app, runtime_of(app))
    bind = settings.server.bind if listen_fd is None else f"fd://{listen_fd}"
    try:
        uvloop.run(serve_app(app, bind))
    except OSError as error:  # the port is taken, or the address is not ours
        fail(f"server.bind: cannot listen on {bind}: {error.strerror or error}")


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--bind", default="127.0.0.1:0", show_default=True, help="HOST:PORT (port 0: a free one)."
)
@click.option(
    "--lines",
    type=click.IntRange(0, 100_000),
    default=100,
    show_default=True,
    help="Start with the last N lines of each file present.",
)
@click.option(
    "--history",
    type=click.IntRange(1, 1_000_000),
    default=100_000,
    show_default=True,
    help="Lines kept for scrolling back (broker.history).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the viewer in the web browser.")
def tail(paths: tuple[str, ...], bind: str, lines: int, history: int, open_browser: bool) -> None:
    """Serve a live viewer of PATH... (files or globs), no config needed; Ctrl-C stops.

    Prints the viewer's URL: `pulseboard tail /var/log/syslog --open`.
    """
    import webbrowser

    from app.cli.tailview import bound_address, listen, tail_settings, unmatched, viewer_url

    try:
        sock = listen(bind)
    except SettingsError as error:
        fail(str(error))
    except OSError as error:
        fail(f"--bind: cannot listen on {bind}: {error.strerror or error}")
    try:
        settings = tail_settings(paths, bound_address(sock), lines, history)
    except SettingsError as error:
        fail(str(error))
    for path in unmatched(paths):
        click.echo(f"pulseboard: warning: {path} matches no file yet; waiting for it", err=True)
    configure_logging(settings.log.format, settings.log.level)
    url = viewer_url(sock)
    click.echo(url)
    if open_browser:
        webbrowser.open(url)
    _run(settings, run_sources=True, listen_fd=sock.detach())


@main.command()
@click.argument("channel")
@click.argument("message")
@url_option
@token_option("publishing")
@click.option("--title", help="Notification title.")
@click.option("--level", type=click.Choice(NOTIFY_LEVELS), help="Notification level.")
@click.option("--priority", help="1-5 or min/low/default/high/urgent (sets the level if absent).")
@click.option("--tags", multiple=True, help="Tags, comma-separated or the option repeated.")
@click.option("--key", help="A later notification with this key replaces this one.")
@click.option("--link", help="Where the notification points (a URL or a path).")
@click.option("--user", help="Post MESSAGE to a chat room as this nickname.")
def publish(
    channel: str, message: str, url: str, token: str | None, user: str | None, **fields: Any
) -> None:
    """Publish MESSAGE to CHANNEL: a notification, or with --user a chat message."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    endpoint = f"{url.rstrip('/')}/api/channels/{channel}/events"
    if user and any(fields.values()):
        given = ", ".join(f"--{name}" for name, value in fields.items() if value)
        fail(f"--user posts a chat message, which has no {given}")
    payload = {"user": user, "text": message} if user else notify_payload(message, **fields)
    try:
        response = httpx.post(endpoint, json=payload, headers=headers)
    except httpx.HTTPError as error:
        fail(f"cannot reach {url}: {error}")
    if response.status_code != 201:
        fail(f"{response.status_code}: {error_text(response)}")
    click.echo(response.json()["id"])


@main.command("kiosk-link")
@url_option
@token_option("the token whose read scope the wall screen gets")
@click.option("--board", help="The board to open (default: the first board).")
@click.option("--ttl", help="How long the link can be used: 30s, 10m, 1h (default 10m).")
def kiosk_link(url: str, token: str | None, board: str | None, ttl: str | None) -> None:
    """Print a one-time URL that signs a wall screen in (read-only) and opens a board.

    The running server makes the code (so every gateway can redeem it); the
    URL works once, until the TTL passes.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {name: value for name, value in (("board", board), ("ttl", ttl)) if value is not None}
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/kiosk-links", json=body, headers=headers)
    except httpx.HTTPError as error:
        fail(f"cannot reach {url}: {error}")
    if response.status_code != 201:
        fail(f"{response.status_code}: {error_text(response)}")
    click.echo(response.json()["url"])


def notify_payload(
    message: str,
    *,
    title: str | None = None,
    level: str | None = None,
    priority: str | None = None,
    tags: tuple[str, ...] = (),
    key: str | None = None,
    link: str | None = None,
) -> dict[str, Any]:
    """The notify JSON for ``publish``'s flags; ``--tags a,b --tags c`` is ``["a", "b", "c"]``."""
    tag_list = [tag.strip() for text in tags for tag in text.split(",") if tag.strip()]
    fields = {"title": title, "level": level, "priority": priority, "key": key, "link": link}
    payload: dict[str, Any] = {"message": message}
    payload.update((name, value) for name, value in fields.items() if value is not None)
    if tag_list:
        payload["tags"] = tag_list
    return payload


@main.command()
@click.argument("channels", nargs=-1, required=True, metavar="CHANNEL...")
@url_option
@token_option("reading")
@click.option("--json", "as_json", is_flag=True, help="Print each event as a JSON line (NDJSON).")
@click.option("--since", help="Start with the events since then: a duration (10m) or UNIX time.")
@click.option("--history", type=click.IntRange(min=0), help="Start with the last N per channel.")
def subscribe(
    channels: tuple[str, ...],
    url: str,
    token: str | None,
    as_json: bool,
    since: str | None,
    history: int | None,
) -> None:
    """Follow CHANNEL... (names or patterns like log.*) and print one line per event.

    A dropped connection is resumed where it stopped; Ctrl-C ends.
    """
    for channel in channels:
        try:
            validate_pattern(channel)
        except PayloadError as error:
            fail(str(error))
    follower = Follower(
        FollowRequest(url, channels, token, since, history),
        on_event=_print_json if as_json else _print_pretty,
        on_note=lambda note: click.echo(f"pulseboard: {note}", err=True),
    )
    try:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=READ_TIMEOUT_S)) as client:
            follower.run(client)
    except SubscribeError as error:
        fail(str(error))
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    except BrokenPipeError:  # piped into head: the reader is done, so are we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_json(event: dict[str, Any]) -> None:
    click.echo(json.dumps(event, ensure_ascii=False, separators=(",", ":")))


def _print_pretty(event: dict[str, Any]) -> None:
    click.echo(event_line(event))


@main.command("check-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def check_config(file: Path | None) -> None:
    """Validate FILE (default: config/default.toml) plus the environment; exit 2 if bad.

    What would run but do nothing (a log path that matches no file) is a warning.
    """
    from app.cli.configcheck import alert_link_warnings, config_warnings
    from app.serve.runtime import build_runtime

    settings = read_settings(file)
    try:
        runtime = build_runtime(settings)
    except ValueError as error:
        fail(str(error))
    if settings.broker.url.startswith("sqlite://"):
        from app.broker.sqlite_store import inspect_database

        if problem := inspect_database(settings.broker.url):
            fail(f"broker.url: {problem}")
    for warning in [*config_warnings(runtime.runner.sources), *alert_link_warnings(settings)]:
        click.echo(f"pulseboard: warning: {warning}", err=True)
    click.echo(f"ok: {file or 'config/default.toml'}")


@main.group()
def sources() -> None:
    """Inspect and run sources."""


@sources.command("list")
def sources_list() -> None:
    """List the installed source types (built-in and plugins)."""
    try:
        types = load_source_types()
    except SourceConfigError as error:
        fail(str(error))
    for name, source_type in sorted(types.items()):
        click.echo(f"{name:12} {source_type.description}")


@sources.command("run")
@config_option
def sources_run(config: Path | None) -> None:
    """Run only the configured sources (and alerts), publishing to the shared broker.

    For deployments of ``serve --no-sources`` gateways on redis://.
    """
    import uvloop

    from app.serve.lease import run_sources_alone
    from app.serve.runtime import build_runtime

    settings = read_settings(config)
    if not settings.broker.shared:
        fail(
            "sources run publishes to a shared broker: memory:// and sqlite:// live inside "
            "`serve`, so set broker.url to redis://HOST:PORT/DB (or just run `serve`)"
        )
    configure_logging(settings.log.format, settings.log.level)
    _check_broker(settings)
    try:
        runtime = build_runtime(settings, run_sources=False)
    except ValueError as error:
        fail(str(error))
    uvloop.run(run_sources_alone(runtime))
