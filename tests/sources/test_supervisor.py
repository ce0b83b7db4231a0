"""The supervisor: a crashing source is logged, counted, restarted with backoff; stop is prompt."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from app.broker.memory import MemoryBroker
from app.events import Event, KindRegistry, State
from app.sources.base import (
    ConfiguredSource,
    Publish,
    SaveState,
    Source,
    SourceType,
    Supervisor,
    configure_sources,
)
from tests.support.waiting import answer


class Plain(msgspec.Struct, forbid_unknown_fields=True):
    type: str


class Crashing:
    """Publishes one line, then fails: a source with a bug."""

    def __init__(self, config: Plain) -> None:
        pass

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        await publish("notes.crashing", "notify", {"message": "about to fail"})
        raise RuntimeError("disk on fire")


class Counting:
    """Publishes a counter as fast as it can yield, until stopped."""

    def __init__(self, config: Plain) -> None:
        pass

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        count = 0
        while not stop.is_set():
            count += 1
            await publish("notes.steady", "notify", {"message": str(count)})
            await asyncio.sleep(0.001)  # the pace of a busy source, leaving the loop to others


class Returning:
    """Returns at once without being asked to."""

    def __init__(self, config: Plain) -> None:
        pass

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        await publish("notes.returning", "notify", {"message": "done already"})


class Stubborn:
    """Ignores stop: only cancellation ends it (and its cleanup still runs)."""

    started = asyncio.Event()
    cleaned_up = False

    def __init__(self, config: Plain) -> None:
        pass

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        Stubborn.started.set()
        try:
            await asyncio.Event().wait()  # nothing ever sets it
        finally:
            Stubborn.cleaned_up = True


class Polite:
    def __init__(self, config: Plain) -> None:
        pass

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        await stop.wait()


SOURCES: dict[str, Callable[[Plain], Source]] = {
    "crashing": Crashing,
    "counting": Counting,
    "returning": Returning,
    "stubborn": Stubborn,
    "polite": Polite,
}
TYPES = {
    name: SourceType(name=name, config=Plain, create=create) for name, create in SOURCES.items()
}


def configured(*names: str) -> list[ConfiguredSource]:
    return configure_sources([{"type": name} for name in names], TYPES)


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(KindRegistry(), history_size=100_000, max_lag=1000)


def retained(broker: MemoryBroker, channel: str) -> int:
    return next((c.retained for c in broker.channels() if c.name == channel), 0)


async def test_a_crash_is_logged_counted_and_restarted_with_growing_backoff(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    crash_times: list[float] = []
    fourth_crash = asyncio.Event()

    def on_crash(source: ConfiguredSource, error: BaseException) -> None:
        crash_times.append(loop.time())
        if len(crash_times) == 4:
            fourth_crash.set()

    supervisor = Supervisor(
        configured("crashing", "counting"),
        broker.publish,
        min_backoff_s=0.02,
        max_backoff_s=0.5,
        on_crash=on_crash,
        rng=random.Random(1),
    )
    supervisor.start()
    try:
        await asyncio.wait_for(fourth_crash.wait(), timeout=10)
        steady_before = retained(broker, "notes.steady")
        assert supervisor.stats["counting#1"].running
        assert supervisor.stats["crashing#0"].crashes == 4
        assert supervisor.stats["crashing#0"].last_error == "RuntimeError: disk on fire"
    finally:
        await supervisor.stop()

    gaps = [later - earlier for earlier, later in itertools.pairwise(crash_times)]
    assert [gap >= 0.02 * 2**n / 2 for n, gap in enumerate(gaps)] == [True, True, True]
    assert retained(broker, "notes.crashing") == 4
    assert retained(broker, "notes.steady") >= steady_before > 0
    crash_logs = [r for r in caplog.records if "source crashing#0 crashed" in r.getMessage()]
    assert len(crash_logs) == 4
    assert all(record.exc_info for record in crash_logs)


async def test_a_source_that_returns_early_is_restarted_without_counting_a_crash(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    third_run = asyncio.Event()

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        event = await broker.publish(channel, kind, data)
        if retained(broker, channel) == 3:
            third_run.set()
        return event

    supervisor = Supervisor(configured("returning"), publish, min_backoff_s=0.01)
    supervisor.start()
    try:
        await asyncio.wait_for(third_run.wait(), timeout=10)
    finally:
        await supervisor.stop()
    assert supervisor.stats["returning#0"].crashes == 0
    assert "returning#0 returned before stop; restarting" in caplog.text


async def test_stop_ends_polite_sources_and_waiting_restarts_at_once(broker: MemoryBroker) -> None:
    crashed = asyncio.Event()
    supervisor = Supervisor(
        configured("polite", "crashing"),
        broker.publish,
        min_backoff_s=3600,
        max_backoff_s=3600,
        on_crash=lambda source, error: crashed.set(),
    )
    supervisor.start()
    await asyncio.wait_for(crashed.wait(), timeout=10)  # now waiting up to an hour to restart
    assert supervisor.stats["polite#0"].running
    await asyncio.wait_for(supervisor.stop(timeout_s=3600), timeout=10)  # not its timeout
    assert not supervisor.healthy


async def test_stop_cancels_a_source_that_ignores_it_and_its_cleanup_runs(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    Stubborn.started, Stubborn.cleaned_up = asyncio.Event(), False
    supervisor = Supervisor(configured("stubborn", "polite"), broker.publish)
    supervisor.start()
    await asyncio.wait_for(Stubborn.started.wait(), timeout=10)
    await asyncio.wait_for(supervisor.stop(timeout_s=0.1), timeout=10)
    assert Stubborn.cleaned_up
    assert "ignored stop" in caplog.text


class Resuming:
    """Counts on from its checkpoint: publishes the next number with the number as state."""

    def __init__(self, config: Plain) -> None:
        self.next = 1

    def restore(self, state: dict[str, str]) -> None:
        self.next = int(state.get("resuming:next", "1"))

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.next <= 5:
            number = self.next
            await publish(
                "notes.resuming",
                "notify",
                {"message": str(number)},
                {"resuming:next": str(number + 1)},
            )
            self.next = number + 1
        await stop.wait()


async def test_a_source_with_checkpoints_resumes_from_what_it_stored(
    broker: MemoryBroker,
) -> None:
    types = {"resuming": SourceType("resuming", Plain, Resuming, checkpoints=True)}
    await broker.save_state({"resuming:next": "4", "other:next": "1"})
    published: list[Event] = []
    second = asyncio.Event()

    async def publish(
        channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        published.append(await broker.publish(channel, kind, data, state))
        if len(published) == 2:
            second.set()
        return published[-1]

    sources = configure_sources([{"type": "resuming"}], types)
    supervisor = Supervisor(sources, publish, broker.load_state)
    supervisor.start()
    try:
        await asyncio.wait_for(second.wait(), timeout=10)
    finally:
        await supervisor.stop()
    assert [event.data["message"] for event in published] == ["4", "5"]
    assert await broker.load_state("resuming:") == {"resuming:next": "6"}


class Marking(Resuming):
    """A Resuming that stores where it starts before it publishes (``use_save_state``)."""

    def use_save_state(self, save_state: SaveState) -> None:
        self.save_state = save_state

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        await self.save_state({"marking:started": str(self.next)})
        await stop.wait()


async def test_a_checkpointing_source_may_store_state_without_publishing(
    broker: MemoryBroker,
) -> None:
    types = {
        "marking": SourceType("marking", Plain, Marking, checkpoints=True),
        "resuming": SourceType("resuming", Plain, Resuming, checkpoints=True),
    }
    sources = configure_sources([{"type": "marking"}, {"type": "resuming"}], types)
    supervisor = Supervisor(sources, broker.publish, broker.load_state, broker.save_state)
    supervisor.start()
    try:
        assert await _eventually_state(broker, "marking:") == {"marking:started": "1"}
        assert await _eventually_state(broker, "resuming:") == {"resuming:next": "6"}
    finally:
        await supervisor.stop()
    assert all(stat.crashes == 0 for stat in supervisor.stats.values())  # without one: as before


async def _eventually_state(broker: MemoryBroker, prefix: str) -> dict[str, str]:
    """What is stored under ``prefix`` once it is complete (the resuming source: at 6)."""
    return await answer(
        lambda: broker.load_state(prefix),
        lambda state: bool(state) and state.get("resuming:next", "6") == "6",
        f"the state under {prefix!r} complete",
    )
