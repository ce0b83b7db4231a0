"""The door to Quart's and Hypercorn's internals: the probe, its fallbacks, the lean event."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import h11
import pytest
from hypercorn.asyncio import tcp_server
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import AsyncioSingleTask, EventWrapper, WorkerContext
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from quart.asgi import ASGIHTTPConnection

from app.web import fastpath
from app.web.fastpath import (
    STANDARD,
    FastPaths,
    LeanEvent,
    LeanIdleTask,
    hypercorn_connection,
    lean_events,
    lean_idle_timers,
    probe,
)

ALL_ON = FastPaths(
    lean_stream=True, connection_control=True, lean_answer=True, lean_event=True, lean_idle=True
)


def test_every_fast_path_is_live_on_the_pinned_versions(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "pulseboard"):
        assert probe() == ALL_ON
    assert (
        "fast paths: lean_stream=on connection_control=on lean_answer=on lean_event=on"
        " lean_idle=on" in caplog.text
    )


def test_another_hypercorn_minor_turns_its_paths_off(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fastpath.version
    monkeypatch.setattr(
        fastpath, "version", lambda name: "0.19.0" if name == "hypercorn" else real(name)
    )
    assert probe() == STANDARD


def test_another_quart_minor_turns_only_the_lean_stream_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = fastpath.version
    monkeypatch.setattr(
        fastpath, "version", lambda name: "0.23.1" if name == "quart" else real(name)
    )
    assert probe() == replace(ALL_ON, lean_stream=False)


def test_another_h11_minor_turns_only_the_lean_answer_off(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fastpath.version
    monkeypatch.setattr(fastpath, "version", lambda name: "0.17.0" if name == "h11" else real(name))
    assert probe() == replace(ALL_ON, lean_answer=False)


def test_a_missing_hypercorn_method_turns_the_connection_paths_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(H11Protocol, "stream_send")
    assert probe() == replace(STANDARD, lean_event=True, lean_idle=True)
    assert "H11Protocol.stream_send missing" in caplog.text


def test_a_missing_quart_method_turns_the_lean_stream_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(ASGIHTTPConnection, "_create_request_from_scope")
    assert probe() == replace(ALL_ON, lean_stream=False)


def test_an_attribute_hypercorn_no_longer_sets_turns_the_connection_paths_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        fastpath, "CONNECTION_SETS", (*fastpath.CONNECTION_SETS, (TCPServer, "socket_writer"))
    )
    assert probe() == replace(STANDARD, lean_event=True, lean_idle=True)
    assert "TCPServer.socket_writer no longer set" in caplog.text


def test_h11_internals_gone_turn_only_the_lean_answer_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(h11.Connection, "_respond_to_state_changes")
    monkeypatch.setattr(
        fastpath, "ANSWER_SETS_IN_HANDLE", (*fastpath.ANSWER_SETS_IN_HANDLE, (HTTPStream, "gone"))
    )
    assert probe() == replace(ALL_ON, lean_answer=False)
    assert "Connection._respond_to_state_changes missing" in caplog.text


def test_a_changed_idle_timer_turns_only_the_lean_idle_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(TCPServer, "_idle_timeout")
    assert probe() == replace(ALL_ON, lean_idle=False)
    assert "TCPServer._idle_timeout missing" in caplog.text
    monkeypatch.undo()
    monkeypatch.delattr(tcp_server, "AsyncioSingleTask")
    assert probe() == replace(ALL_ON, lean_idle=False)


def test_a_missing_event_seam_turns_the_lean_event_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(WorkerContext, "event_class")
    assert probe() == replace(ALL_ON, lean_event=False)


async def test_a_send_that_is_not_hypercorn_http_1_1_has_no_connection() -> None:
    async def send(message: object) -> None:
        return None

    assert hypercorn_connection(send) is None  # type: ignore[arg-type]
    assert hypercorn_connection(print) is None  # type: ignore[arg-type]
    assert not await fastpath.answer(send, 201, [(b"content-length", b"0")], b"")  # type: ignore[arg-type]


def test_lean_events_are_made_inside_the_block_only_and_put_back() -> None:
    with lean_events(ALL_ON):
        assert isinstance(WorkerContext(max_requests=None).terminated, LeanEvent)
    assert WorkerContext.event_class is EventWrapper
    with lean_events(replace(ALL_ON, lean_event=False)):
        assert isinstance(WorkerContext(max_requests=None).terminated, EventWrapper)


async def test_set_wakes_every_waiter_and_clear_rearms() -> None:
    event = LeanEvent()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # one turn of the loop, not a wait: the waiters reach their wait()
    assert not any(waiter.done() for waiter in waiters)
    await event.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert event.is_set()
    await event.wait()  # already set: at once
    await event.clear()
    again = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)  # one turn of the loop: the waiter is in its wait()
    assert not again.done()
    await event.set()
    await asyncio.wait_for(again, 10)


async def test_a_cancelled_waiter_is_forgotten_and_others_still_wake() -> None:
    event = LeanEvent()
    cancelled = asyncio.ensure_future(event.wait())
    kept = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)  # one turn of the loop: both are in their wait()
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert event._waiters is not None and len(event._waiters) == 1
    await event.set()
    await asyncio.wait_for(kept, 10)


async def test_queued_sees_only_a_hypercorn_queue_holding_a_message() -> None:
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    assert not fastpath.queued(queue.get)
    queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    assert fastpath.queued(queue.get)

    async def elsewhere() -> dict[str, object]:
        return {"type": "http.disconnect"}

    assert not fastpath.queued(elsewhere)  # another server's receive: the timer, always


def test_lean_idle_timers_are_made_inside_the_block_only_and_put_back() -> None:
    with lean_idle_timers(ALL_ON):
        assert tcp_server.AsyncioSingleTask is LeanIdleTask
    assert tcp_server.AsyncioSingleTask is AsyncioSingleTask
    with lean_idle_timers(replace(ALL_ON, lean_idle=False)):
        assert tcp_server.AsyncioSingleTask is AsyncioSingleTask


async def test_a_restart_stopped_within_the_grace_never_starts_its_task() -> None:
    started: list[str] = []

    async def idle() -> None:
        started.append("idle")

    async with TaskGroup(asyncio.get_running_loop()) as group:
        timer = LeanIdleTask()
        await timer.restart(group, idle)
        pending = timer._timer
        assert pending is not None and not pending.cancelled()
        await timer.stop()
        assert pending.cancelled() and timer._timer is None and timer._task is None
    assert started == []


async def test_an_idle_task_starts_after_the_grace_and_stop_cancels_and_awaits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastpath, "IDLE_GRACE_S", 0.01)
    started, ended = asyncio.Event(), asyncio.Event()

    async def idle() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    async with TaskGroup(asyncio.get_running_loop()) as group:
        timer = LeanIdleTask()
        await timer.restart(group, idle)
        await asyncio.wait_for(started.wait(), 10)
        await timer.restart(group, idle)  # the running one is cancelled first
        assert ended.is_set()
        ended.clear()
        await timer.stop()
        assert not ended.is_set()  # the second had not started: only its timer went
        assert timer._task is None and timer._timer is None
