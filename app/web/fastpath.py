"""Every use of Quart's, Hypercorn's and h11's internals, probed at start, each with a fallback.

Nothing else in Pulseboard touches these libraries' private parts; this
module is the door. :func:`probe` runs when the app is built: it checks the
installed versions against the ones this was verified on (pinned in
pyproject.toml) and the attributes each path relies on, logs which paths are
live, and the app reports them as ``pulseboard_fast_path{path=...}``. A path
whose check fails is not taken; the public way serves instead
(:mod:`app.web.asgi`).

The paths (docs/performance.md has the figures):

- ``lean_stream``: ``GET /events`` over Hypercorn's HTTP/1.1 skips Quart's
  ``ASGIHTTPConnection.__call__``, which keeps two tasks, an ``asyncio.wait``
  and the Request alive for as long as the response lasts: about 10 KiB per
  open stream, a third of an idle stream's memory (S1). :func:`handle_request`
  reads the request and lets Quart answer it in the connection's own task
  (Quart's private ``_create_request_from_scope``, ``_send_response``); only
  the stream stays. Once the headers are out, the stream writes its chunks
  straight to the connection's transport (:class:`ChunkedSocket`, chunked
  framing by hand) instead of through ASGI ``send`` → Hypercorn's HTTP stream
  → h11 → the TCP server's lock and ``drain()``: about 15 µs of the 40 µs per
  delivered event, and the hub can write a caught-up stream's events at
  publish time without waking its task. The headers and the final chunk still
  go through ``send``, so h11 and Hypercorn keep their state. Without Quart's
  receiver task nobody hears ``http.disconnect``: the stream registry's
  sweeper looks at :attr:`ChunkedSocket.closed` instead.
  Fallback: Quart's own request handling, the body through ASGI ``send``.
- ``connection_control``: a stream's connection (any HTTP/1.x stream) gets a
  small kernel send buffer (:data:`SEND_BUFFER_BYTES`) instead of Linux's
  autotuned one, which grows to megabytes for a client that reads nothing:
  until that fills, a stalled client costs a write per event like a healthy
  one, and 200 of them took the server's time from 20 healthy neighbours
  (issue 12.2); and a cut stream aborts its connection (RST, unsent bytes
  dropped), since Hypercorn's own close flushes the buffer first, which for a
  client that never reads is never. Both need the transport under ``send``:
  ``HTTPStream.app_send`` → ``H11Protocol.stream_send`` →
  ``TCPServer.protocol_send``, whose server owns the ``writer``.
  Fallback: the default buffer, and a cut cancels the stream's task.
- ``lean_answer``: a lean publish's ``201`` is written in one piece by
  :func:`answer` instead of two ASGI messages through Hypercorn's HTTP stream
  and h11, which built three h11 events (header validation, the ``Response``
  made twice, a writer per state) and went twice through the TCP server's
  lock and ``drain()``: a third of a single POST's CPU (docs/performance.md,
  "Single POSTs"). Only the plainest cycle takes it (HTTP/1.1 keep-alive, the
  request read whole, no upgrade, under ``keep_alive_max_requests``). The
  bytes are the ones h11 would write, with Hypercorn's own ``date`` and
  ``server`` headers, written to the transport (past high water the TCP
  server's ``send`` waits for the client, as it would have). Then h11's state
  machine and Hypercorn's stream move as the two messages would have moved
  them: h11's ``_cstate`` through ``Response`` and ``EndOfMessage``, the
  stream to ``CLOSED`` with its access log line, and Hypercorn's own
  ``StreamClosed`` (the next cycle, the idle timer). Fallback: ``send`` (any
  other connection, or a cycle that is not that plain).
- ``lean_event``: Hypercorn's asyncio worker makes one event per connection
  through ``WorkerContext.event_class``; its own wraps ``asyncio.Event``,
  which allocates a 760-byte waiter deque up front (5 % of an idle stream).
  :class:`LeanEvent` makes its waiter list only when somebody waits. Set for
  the time Hypercorn serves (:func:`lean_events`), then put back.
  Fallback: Hypercorn's event.
- ``lean_idle``: Hypercorn's TCP server restarts its keep-alive timer after
  every answer and stops it when the next request comes: its
  ``AsyncioSingleTask`` makes a task (which makes another in ``wait_for``)
  and a timer each time, and cancels and awaits both, about 14 µs a request
  (6 % of a single POST). :class:`LeanIdleTask` starts that same task only
  once the connection has been idle for :data:`IDLE_GRACE_S`, so a
  connection whose requests come closer than that only sets and cancels one
  timer handle; the keep-alive timeout and the close of idle connections at
  shutdown come up to that much later. Set for the time Hypercorn serves
  (:func:`lean_idle_timers`), then put back. Fallback: Hypercorn's own.

- ``queued_body``: a lean publish reads its body under ``server.body_timeout``,
  but an ``asyncio.timeout`` costs a timer handle per message (6 % of a single
  POST's CPU), and the body of a small POST has nearly always arrived with its
  headers. :func:`queued` looks into Hypercorn's per-request queue behind
  ``receive`` (an ``asyncio.Queue``'s ``get``) so the timer is set only when
  ``receive`` would wait. Not probed: the check is an ``isinstance`` per
  call, and not reported. Fallback: the timer every time (any other
  ``receive``).

Deliberate oddities: :func:`hypercorn_connection` walks ``send.__self__``
three levels deep (checked with ``isinstance`` against Hypercorn's classes at
every step, so HTTP/2, HTTP/1.0's other shapes or another server simply get
None); the probe reads the attribute names a constructor assigns from its
code object, since those attributes exist only on instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import chain
from time import time
from typing import cast

import h11
from h11._state import ConnectionState
from hypercorn.asyncio import tcp_server
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.events import RawData
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope
from quart import Quart
from quart.asgi import ASGIHTTPConnection
from quart.typing import ResponseTypes

from app.web.streaming.writer import Abort

log = logging.getLogger("pulseboard")

VERIFIED_MINORS = {"quart": "0.22", "hypercorn": "0.18", "h11": "0.16"}
HIGH_WATER_BYTES = 64 * 1024
SEND_BUFFER_BYTES = 32 * 1024  # the kernel doubles it for its bookkeeping
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, drops the queue

Needs = tuple[tuple[type, str], ...]
QUART_NEEDS: Needs = (
    (ASGIHTTPConnection, "_create_request_from_scope"),
    (ASGIHTTPConnection, "_send_response"),
    (Quart, "handle_request"),
)
CONNECTION_NEEDS: Needs = (
    (HTTPStream, "app_send"),
    (H11Protocol, "stream_send"),
    (TCPServer, "protocol_send"),
)
CONNECTION_SETS: Needs = (  # instance attributes, assigned in __init__
    (HTTPStream, "send"),
    (HTTPStream, "closed"),
    (H11Protocol, "send"),
    (TCPServer, "writer"),
)
EVENT_NEEDS: Needs = ((WorkerContext, "event_class"),)
IDLE_NEEDS: Needs = ((TCPServer, "_idle_timeout"),)
SINGLE_TASK = "AsyncioSingleTask"  # looked up in tcp_server when a TCPServer makes its idle timer
IDLE_SETS: Needs = ((TCPServer, "idle_task"), (TCPServer, SINGLE_TASK))
IDLE_SETS_IN_TASK_GROUP: Needs = ((TaskGroup, "_task_group"),)
IDLE_GRACE_S = 0.5
ANSWER_NEEDS: Needs = (
    (h11.Connection, "_respond_to_state_changes"),
    (ConnectionState, "process_event"),
    (HTTPStream, "handle"),
)
ANSWER_SETS: Needs = (  # instance attributes, assigned in __init__
    (h11.Connection, "_cstate"),
    (ConnectionState, "states"),
    (ConnectionState, "keep_alive"),
    (ConnectionState, "pending_switch_proposals"),
    (H11Protocol, "connection"),
    (H11Protocol, "config"),
    (H11Protocol, "keep_alive_requests"),
    (HTTPStream, "state"),
    (HTTPStream, "stream_id"),
)
ANSWER_SETS_IN_HANDLE: Needs = ((HTTPStream, "scope"), (HTTPStream, "start_time"))


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths this process takes (see the module docstring); False: the public way."""

    lean_stream: bool
    connection_control: bool
    lean_answer: bool
    lean_event: bool
    lean_idle: bool

    def describe(self) -> str:
        """``lean_stream=on connection_control=off ...``, for the start-up log."""
        return " ".join(f"{name}={'on' if on else 'off'}" for name, on in asdict(self).items())


STANDARD = FastPaths(
    lean_stream=False,
    connection_control=False,
    lean_answer=False,
    lean_event=False,
    lean_idle=False,
)


def probe() -> FastPaths:
    """Check versions and attributes; log and return the paths this process may take."""
    quart = _verified("quart") and _has(QUART_NEEDS)
    hypercorn = _verified("hypercorn")
    connection = hypercorn and _has(CONNECTION_NEEDS) and _sets(CONNECTION_SETS)
    paths = FastPaths(
        lean_stream=quart and connection,
        connection_control=connection,
        lean_answer=connection
        and _verified("h11")
        and _has(ANSWER_NEEDS)
        and _sets(ANSWER_SETS)
        and _sets(ANSWER_SETS_IN_HANDLE, "handle"),
        lean_event=hypercorn and _has(EVENT_NEEDS),
        lean_idle=hypercorn
        and _has(IDLE_NEEDS)
        and hasattr(tcp_server, SINGLE_TASK)
        and _sets(IDLE_SETS)
        and _sets(IDLE_SETS_IN_TASK_GROUP),
    )
    log.info("fast paths: %s", paths.describe())
    return paths


def _verified(package: str) -> bool:
    try:
        installed = version(package)
    except PackageNotFoundError:
        return False
    verified = VERIFIED_MINORS[package]
    if ".".join(installed.split(".")[:2]) == verified:
        return True
    log.warning("%s %s is not the verified %s.x: fast paths off", package, installed, verified)
    return False


def _has(needs: Needs) -> bool:
    missing = [f"{owner.__name__}.{name}" for owner, name in needs if not hasattr(owner, name)]
    if missing:
        log.warning("fast path off: %s missing", ", ".join(missing))
    return not missing


def _sets(needs: Needs, method: str = "__init__") -> bool:
    missing = [
        f"{owner.__name__}.{name}"
        for owner, name in needs
        if name not in _assigned_in(owner, method)
    ]
    if missing:
        log.warning("fast path off: %s no longer set", ", ".join(missing))
    return not missing


def _assigned_in(owner: type, method: str) -> tuple[str, ...]:
    code = getattr(vars(owner).get(method), "__code__", None)
    return tuple(code.co_names) if code is not None else ()


# ``lean_stream``: the request read and answered without Quart's two tasks.


def lean_socket(scope: HTTPScope, send: ASGISendCallable) -> ChunkedSocket | None:
    """The transport for a ``GET`` over Hypercorn's HTTP/1.1, or None when this is not that."""
    if scope["method"] != "GET" or scope["http_version"] != "1.1":
        return None
    found = hypercorn_connection(send)
    return ChunkedSocket(*found) if found is not None else None


async def handle_request(
    app: Quart, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> ResponseTypes | None:
    """Read the request and let Quart answer it in this task; None if the client left first."""
    request = ASGIHTTPConnection(app, scope)._create_request_from_scope(send)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        request.body.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    request.body.set_complete()
    return await app.handle_request(request)


async def send_response(
    app: Quart, scope: HTTPScope, send: ASGISendCallable, response: ResponseTypes
) -> None:
    """Send Quart's ``response`` (an error, a redirect) as Quart would, under its timeout."""
    sending = ASGIHTTPConnection(app, scope)._send_response(send, response)
    await asyncio.wait_for(sending, app.config["RESPONSE_TIMEOUT"])


class ChunkedSocket:
    """HTTP/1.1 chunks written straight to the connection's transport.

    A client that stops reading keeps the buffer past high water; the stream
    then waits in :meth:`drain` and the stream registry's ``write_timeout``
    cuts it, as it would a blocked ``send``.
    """

    __slots__ = ("http_stream", "transport", "writer")

    def __init__(self, writer: asyncio.StreamWriter, http_stream: HTTPStream) -> None:
        self.writer = writer
        self.transport = writer.transport
        self.http_stream = http_stream

    @property
    def closed(self) -> bool:
        """True once the client hung up (Hypercorn saw its input end) or the socket closed."""
        return bool(self.http_stream.closed or self.transport.is_closing())

    def write_now(self, body: bytes) -> bool:
        """Write one chunk without waiting; False once the buffer is past high water."""
        if not body:
            return True  # an empty chunk is the last chunk: it would end the response
        if self.transport.is_closing():
            raise ConnectionResetError("client connection closed")
        self.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        return bool(self.transport.get_write_buffer_size() <= HIGH_WATER_BYTES)

    async def drain(self) -> None:
        """Wait until the transport's buffer is under its low-water mark."""
        await self.writer.drain()

    def abort(self) -> None:
        """Close the connection at once, dropping what is unsent (RST)."""
        abort_transport(self.transport)


# ``connection_control``: the transport under ``send``.


def hypercorn_connection(send: ASGISendCallable) -> tuple[asyncio.StreamWriter, HTTPStream] | None:
    """The writer and HTTP stream under Hypercorn's HTTP/1.x ``send``, or None if it is not that."""
    found = _hypercorn_layers(send)
    return (found[2].writer, found[0]) if found is not None else None


def _hypercorn_layers(send: ASGISendCallable) -> tuple[HTTPStream, H11Protocol, TCPServer] | None:
    """The three objects under Hypercorn's HTTP/1.x ``send``, or None if it is not that."""
    http_stream = getattr(send, "__self__", None)
    if not isinstance(http_stream, HTTPStream):
        return None
    protocol = getattr(http_stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return None
    server = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    return http_stream, protocol, server


def stream_connection(send: ASGISendCallable) -> Abort | None:
    """Ready the connection under Hypercorn's HTTP/1.x ``send`` for a stream; its abort.

    The body still goes through ``send``; the connection gets the lean path's
    small send buffer and abort on a cut. None under HTTP/2 (one connection
    carries other streams) or another server.
    """
    found = hypercorn_connection(send)
    if found is None:
        return None
    transport = found[0].transport
    limit_send_buffer(transport)
    return lambda: abort_transport(transport)


def limit_send_buffer(transport: asyncio.WriteTransport) -> None:
    """Cap the kernel's send buffer of a stream's connection (see the module docstring)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def abort_transport(transport: asyncio.WriteTransport) -> None:
    """Close ``transport`` at once: the kernel drops its unsent bytes and sends RST."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed already
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()


# ``lean_answer``: a whole small answer in one write.

Headers = list[tuple[bytes, bytes]]


async def answer(send: ASGISendCallable, status: int, headers: Headers, body: bytes) -> bool:
    """Send a whole answer in one write; False (nothing sent) when ``send`` must carry it.

    ``headers`` must hold the ``content-length`` and be lower-case and valid, as
    Hypercorn would make them.
    """
    found = _hypercorn_layers(send)
    if found is None or not _plain_cycle(*found[:2]) or found[2].writer.is_closing():
        return False
    http_stream, protocol, server = found
    connection = cast(h11.Connection, protocol.connection)
    config = protocol.config
    pieces = [b"HTTP/1.1 %d \r\n" % status]
    pieces += [b"%s: %s\r\n" % pair for pair in chain(headers, config.response_headers("h11"))]
    pieces += [b"\r\n", body]
    cycle = connection._cstate
    before = dict(cycle.states)
    cycle.process_event(h11.SERVER, h11.Response)
    cycle.process_event(h11.SERVER, h11.EndOfMessage)
    connection._respond_to_state_changes(before)
    http_stream.response = {"type": "http.response.start", "status": status, "headers": headers}
    http_stream.state = ASGIHTTPState.CLOSED
    server.writer.write(b"".join(pieces))
    if server.writer.transport.get_write_buffer_size() > HIGH_WATER_BYTES:
        await protocol.send(RawData(data=b""))  # Hypercorn's drain, and its close on an error
    elapsed = time() - http_stream.start_time
    await config.log.access(http_stream.scope, http_stream.response, elapsed)
    await http_stream.send(StreamClosed(stream_id=http_stream.stream_id))
    return True


def _plain_cycle(http_stream: HTTPStream, protocol: H11Protocol) -> bool:
    """True when h11 would write the answer as given: nothing sent yet, keep-alive, no upgrade."""
    connection = protocol.connection
    if not isinstance(connection, h11.Connection):
        return False  # a WebSocket's
    cycle = connection._cstate
    return (
        http_stream.state is ASGIHTTPState.REQUEST
        and not http_stream.closed
        and connection.our_state is h11.SEND_RESPONSE
        and connection.their_state is h11.DONE
        and connection.their_http_version == b"1.1"
        and cycle.keep_alive
        and not cycle.pending_switch_proposals
        and not connection.client_is_waiting_for_100_continue
        and protocol.keep_alive_requests < protocol.config.keep_alive_max_requests
    )


# ``queued_body``: what Hypercorn has queued for the app.


def queued(receive: ASGIReceiveCallable) -> bool:
    """True when ``receive`` is Hypercorn's queue and holds a message: it will not wait."""
    queue = getattr(receive, "__self__", None)
    return isinstance(queue, asyncio.Queue) and not queue.empty()


# ``lean_event``: Hypercorn's per-connection event.


class LeanEvent:
    """``hypercorn.typing.Event``: set, clear, wait (any number of waiters), is_set."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    async def clear(self) -> None:
        """Unset the event."""
        self._set = False

    async def set(self) -> None:
        """Set the event and wake every waiter."""
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return once the event is set (at once if it is)."""
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)

    def is_set(self) -> bool:
        """True from :meth:`set` until :meth:`clear`."""
        return self._set


@contextlib.contextmanager
def lean_events(paths: FastPaths) -> Iterator[None]:
    """While in the block, Hypercorn's asyncio worker makes :class:`LeanEvent` events."""
    if not paths.lean_event:
        yield
        return
    previous = WorkerContext.event_class
    WorkerContext.event_class = LeanEvent
    try:
        yield
    finally:
        WorkerContext.event_class = previous


# ``lean_idle``: the keep-alive timer of Hypercorn's TCP server.


class LeanIdleTask:
    """Hypercorn's ``AsyncioSingleTask`` (restart, stop) whose task starts after a grace period."""

    __slots__ = ("_loop", "_task", "_timer")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    async def restart(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        """Stop what runs; start ``action`` in ``task_group`` after :data:`IDLE_GRACE_S`."""
        await self.stop()
        self._timer = self._loop.call_later(IDLE_GRACE_S, self._start, task_group, action)

    def _start(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        self._timer = None
        self._task = task_group._task_group.create_task(action())  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Cancel the pending start, or cancel the task and wait until it has ended."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.contextmanager
def lean_idle_timers(paths: FastPaths) -> Iterator[None]:
    """While in the block, Hypercorn's TCP servers time their idle in a :class:`LeanIdleTask`."""
    if not paths.lean_idle:
        yield
        return
    previous = getattr(tcp_server, SINGLE_TASK)
    setattr(tcp_server, SINGLE_TASK, LeanIdleTask)
    try:
        yield
    finally:
        setattr(tcp_server, SINGLE_TASK, previous)
