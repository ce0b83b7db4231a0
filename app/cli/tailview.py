"""``pulseboard tail PATH...``: a log viewer of some files with no config file, as frontail does.

Every path (or glob) gets a logtail source; all of them publish to one log
channel, so one viewer shows the files merged in arrival order, each row naming
its file. The broker is memory:// (nothing to set up, nothing kept).

Deliberate oddity: the command binds its listening socket itself before the
server starts and hands it over (``serve --listen-fd`` does the same), so that
``--bind HOST:0`` can print the port the system picked, and the printed URL
(or the browser ``--open`` starts) is answered as soon as the server is up:
connections wait in the socket's backlog until then.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Sequence

from app.settings import Settings, SettingsError, settings_from_dict

TAIL_CHANNEL = "log.tail"
TITLE_MAX = 60


def tail_settings(paths: Sequence[str], bind: str, lines: int, history: int) -> Settings:
    """Settings for tailing ``paths`` on ``bind``: memory broker, one logtail per path.

    >>> settings = tail_settings(["/var/log/syslog"], "127.0.0.1:9001", 100, 10_000)
    >>> settings.broker.url, [s["path"] for s in settings.sources]
    ('memory://', ['/var/log/syslog'])
    """
    title = ", ".join(os.path.basename(path) or path for path in paths)
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
    return settings_from_dict(
        {
            "server": {"bind": bind},
            "broker": {"url": "memory://", "history": history},
            "channels": [{"name": TAIL_CHANNEL, "kind": "log", "title": title}],
            "sources": [
                {"type": "logtail", "channel": TAIL_CHANNEL, "path": path, "lines": lines}
                for path in map(os.path.abspath, paths)
            ],
        }
    )


def unmatched(paths: Sequence[str]) -> list[str]:
    """The paths that name no file yet (tailed anyway: they may appear later)."""
    return [path for path in paths if not glob.glob(path)]


def listen(bind: str) -> socket.socket:
    """A listening TCP socket on ``bind`` (``HOST:PORT``; port 0 picks a free one)."""
    host, _, port_text = bind.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit():
        raise SettingsError(f"--bind: expected HOST:PORT, got {bind!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, int(port_text)), family=family, backlog=4096)


def viewer_url(sock: socket.socket) -> str:
    """The URL of the viewer served on ``sock``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/channels/{TAIL_CHANNEL}"


def bound_address(sock: socket.socket) -> str:
    """``HOST:PORT`` as ``server.bind`` spells it (the port the system picked)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
