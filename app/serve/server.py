"""Serving the app with Hypercorn on uvloop, and ending streams ourselves on a signal.

Shutdown sequence (DESIGN rule 6 and 8): SIGTERM/SIGINT → readiness flips to
503 → every stream ends its response cleanly (clients reconnect elsewhere with
their cursor) → Hypercorn stops accepting and closes idle connections →
Quart's after_serving stops the sources and closes the broker. Hypercorn
would otherwise cancel the open streams itself before Quart hears of it.

Deliberate oddity: before serving, everything allocated at start-up is moved
out of the garbage collector's sight (``gc.freeze``) and the young generation
is collected after 50,000 allocations instead of 700. Every delivered event
leaves short-lived garbage (futures, dicts); with the defaults the collector
ran several times per fan-out and cost 5-8 % of CPU and much of the p99
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from app.serve.factory import runtime_of
from app.web import fastpath
from app.web.asgi import StreamingQuart

log = logging.getLogger("pulseboard")

GRACEFUL_TIMEOUT_S = 3.0
LISTEN_BACKLOG = 4096
GC_THRESHOLDS = (50_000, 20, 20)


def hypercorn_config(bind: str, access_log: str | None) -> Config:
    """Hypercorn settings for long-lived streams; ``access_log`` is a file path, ``-`` or None."""
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.backlog = LISTEN_BACKLOG  # a dashboard reopening on 1,000 screens at once
    config.accesslog = access_log
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(app: StreamingQuart, bind: str) -> None:
    """Serve ``app`` on ``bind`` until SIGTERM or SIGINT."""
    runtime = runtime_of(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        log.info("stopping: ending %d open streams", len(runtime.streams.streams))
        runtime.accepting = False
        await runtime.streams.close_all(runtime.settings.server.shutdown_grace)

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.info("listening on http://%s", bind)
    config = hypercorn_config(bind, runtime.settings.log.access_log)
    with fastpath.lean_events(app.fast_paths), fastpath.lean_idle_timers(app.fast_paths):
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)
