"""The ``pulseboard`` command (also ``python -m app``).

User errors (a bad config, an unreachable server) print one line and exit
with status 2; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

from app.logs import configure_logging
from app.settings import Settings, SettingsError, load_settings
from app.sources.base import SourceConfigError, configure_sources, load_source_types

USAGE_ERROR = 2


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


@click.group()
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
            f"--workers {workers} needs a shared broker: the memory broker lives in one "
            "process, so set broker.url to redis://HOST:PORT/DB"
        )
    configure_logging(settings.log.format, settings.log.level)
    if listen_fd is None:
        _check_broker(settings)
    if workers > 1:
        from app.workers import serve_workers

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
    """Refuse to start, naming the key, when broker.url points at an unreachable Redis."""
    if not settings.broker.shared:
        return
    from app.broker.redis import reachable

    problem = reachable(settings.broker.url, settings.broker.timeout)
    if problem:
        fail(f"broker.url: {problem}")


def _run(settings: Settings, *, run_sources: bool, listen_fd: int | None = None) -> None:
    import uvloop

    from app import create_app, runtime_of
    from app.lease import run_sources_under_lease
    from app.server import serve as serve_app

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
@click.argument("channel")
@click.argument("message")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Server URL.")
@click.option("--token", envvar="PULSEBOARD_TOKEN", help="Bearer token for publishing.")
@click.option("--title", help="Notification title.")
@click.option("--user", help="Post MESSAGE to a chat room as this nickname.")
def publish(
    channel: str, message: str, url: str, token: str | None, title: str | None, user: str | None
) -> None:
    """Publish MESSAGE to CHANNEL: a notification, or with --user a chat message."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    endpoint = f"{url.rstrip('/')}/api/channels/{channel}/events"
    try:
        if user:
            response = httpx.post(endpoint, json={"user": user, "text": message}, headers=headers)
        elif title:
            response = httpx.post(
                endpoint, json={"message": message, "title": title}, headers=headers
            )
        else:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            response = httpx.post(endpoint, content=message.encode(), headers=headers)
    except httpx.HTTPError as error:
        fail(f"cannot reach {url}: {error}")
    if response.status_code != 201:
        fail(f"{response.status_code}: {_error_text(response)}")
    click.echo(response.json()["id"])


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


@main.command("check-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def check_config(file: Path | None) -> None:
    """Validate FILE (default: config/default.toml) plus the environment; exit 2 if bad."""
    from app.runtime import build_runtime

    settings = read_settings(file)
    try:
        build_runtime(settings)
    except ValueError as error:
        fail(str(error))
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

    from app.lease import run_sources_alone
    from app.runtime import build_runtime

    settings = read_settings(config)
    if not settings.broker.shared:
        fail(
            "sources run publishes to a shared broker: the memory broker lives inside "
            "`serve`, so set broker.url to redis://HOST:PORT/DB (or just run `serve`)"
        )
    configure_logging(settings.log.format, settings.log.level)
    _check_broker(settings)
    try:
        runtime = build_runtime(settings, run_sources=False)
    except ValueError as error:
        fail(str(error))
    uvloop.run(run_sources_alone(runtime))


if __name__ == "__main__":
    main()
