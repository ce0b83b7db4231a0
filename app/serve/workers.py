"""``pulseboard serve --workers N``: N serve processes sharing one listening socket.

The parent binds the socket once and starts N children, each a plain
``pulseboard serve --listen-fd FD`` with its own event loop, broker
connection and streams; the kernel spreads new connections across them.
The parent forwards SIGTERM/SIGINT so that each child runs its own graceful
shutdown (streams ended by us, not cancelled by Hypercorn) and exits with
the worst child status.

Deliberate oddities:
- Not Hypercorn's own ``workers``: its worker processes handle signals
  themselves and would cancel our streams instead of ending them.
- Only for redis://: the children share nothing but Redis and the socket.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType
from typing import NoReturn

log = logging.getLogger("pulseboard")

BACKLOG = 2048


def listen(bind: str) -> socket.socket:
    """A listening TCP socket on ``HOST:PORT`` that children may inherit."""
    host, _, port = bind.rpartition(":")
    listener = socket.create_server((host.strip("[]"), int(port)), backlog=BACKLOG)
    listener.set_inheritable(True)
    return listener


def serve_workers(bind: str, workers: int, child_args: list[str]) -> NoReturn:
    """Start ``workers`` serve processes on one socket; exit when they all have.

    Raises:
        OSError: ``bind`` cannot be listened on (taken, not ours).
    """
    listener = listen(bind)
    fd = listener.fileno()
    command = [sys.executable, "-m", "app", "serve", *child_args, "--bind", bind]
    command += ["--listen-fd", str(fd)]
    children = [subprocess.Popen(command, pass_fds=(fd,)) for _ in range(workers)]
    log.info("serving on http://%s with %d worker processes", bind, workers)
    _forward_signals(children)
    codes = [child.wait() for child in children]
    listener.close()
    sys.exit(max(codes, key=abs))


def _forward_signals(children: list[subprocess.Popen[bytes]]) -> None:
    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
