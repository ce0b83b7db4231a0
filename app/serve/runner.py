"""The one owner of this process's sources and alert rules: it starts and stops them together.

Who decides *whether* this process runs them is another matter: ``Runtime``
starts the runner when it runs its own sources; the lease (``app.serve.lease``)
starts and stops it as this process gains and loses the deployment's lease.
Neither builds a ``Supervisor`` or an ``AlertEngine`` itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from app.alerts import AlertEngine
from app.sources.base import (
    ConfiguredSource,
    LoadState,
    Publish,
    SaveState,
    SourceStats,
    Supervisor,
)

log = logging.getLogger("pulseboard")

ALERTS_STOP_S = 2.0


class SourceRunner:
    """Runs the configured sources under a ``Supervisor`` and the alert rules beside them."""

    def __init__(
        self,
        sources: list[ConfiguredSource],
        make_alerts: Callable[[], AlertEngine] | None = None,
    ) -> None:
        self.sources = sources
        self.make_alerts = make_alerts
        self._supervisor: Supervisor | None = None
        self._alerts: asyncio.Task[None] | None = None
        self._alerts_stop = asyncio.Event()

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._supervisor is not None

    @property
    def healthy(self) -> bool:
        """Every source runs (true when none is started here: nothing is failing)."""
        return self._supervisor is None or self._supervisor.healthy

    @property
    def stats(self) -> Mapping[str, SourceStats]:
        """Each running source's figures by label; empty while stopped."""
        return self._supervisor.stats if self._supervisor is not None else {}

    def start(
        self,
        publish: Publish,
        load_state: LoadState | None = None,
        save_state: SaveState | None = None,
    ) -> None:
        """Start the sources publishing through ``publish``, and the alert rules; once.

        ``load_state`` gives sources that keep checkpoints what they stored;
        ``save_state`` lets them store a checkpoint without an event.
        """
        if self._supervisor is not None:
            return
        self._supervisor = Supervisor(self.sources, publish, load_state, save_state)
        self._supervisor.start()
        if self.make_alerts is not None:
            self._alerts_stop = asyncio.Event()
            engine = self.make_alerts()
            self._alerts = asyncio.create_task(engine.run(self._alerts_stop), name="alerts")

    async def stop(self) -> None:
        """Stop the sources and the alert rules (cancelled after ``ALERTS_STOP_S``)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await supervisor.stop()
        alerts, self._alerts = self._alerts, None
        if alerts is not None:
            self._alerts_stop.set()
            _done, pending = await asyncio.wait([alerts], timeout=ALERTS_STOP_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(alerts, return_exceptions=True)
