"""``pulseboard subscribe``: follow channels over ``/events?format=json`` from a terminal.

Deliberate oddities:
- A dropped connection (server restart, proxy timeout, network) is retried
  with backoff and resumed with ``Last-Event-ID``: the server then sends what
  was missed, once. Only the *first* connection failing is an error: a server
  that never answered is a typo, one that went away is a restart.
- ``since`` and ``history`` are sent only on a connection without a cursor;
  with one, they would replay events already printed.
- The gap frame is not an event: it goes to ``on_gap`` (stderr), and its id,
  like every id, becomes the cursor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

READ_TIMEOUT_S = 90.0  # several heartbeats: silence this long means the connection is dead
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class SubscribeError(Exception):
    """What the user must fix (a wrong URL, token or channel); the CLI exits 2 with it."""


@dataclass(frozen=True)
class SseFrame:
    """One dispatched SSE event: its ``id:`` (None when it had none), ``event:`` and data."""

    id: str | None
    event: str
    data: str


def sse_frames(lines: Iterable[str]) -> Iterator[SseFrame]:
    """Frames from the lines of an SSE body (WHATWG rules: comments and ``retry:`` skipped)."""
    event_id: str | None = None
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield SseFrame(event_id, event, "\n".join(data))
            event_id, event, data = None, "message", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            event_id = value


@dataclass(frozen=True)
class FollowRequest:
    """What to follow and from where."""

    url: str
    channels: tuple[str, ...]
    token: str | None = None
    since: str | None = None
    history: int | None = None

    def params(self, cursor: str | None) -> httpx.QueryParams:
        """Query parameters; ``since``/``history`` only when starting without a cursor."""
        params = httpx.QueryParams([("channel", channel) for channel in self.channels])
        params = params.add("format", "json")
        if cursor is None and self.since is not None:
            params = params.add("since", self.since)
        if cursor is None and self.history:
            params = params.add("history", str(self.history))
        return params

    def headers(self, cursor: str | None) -> dict[str, str]:
        """The token and the cursor, as headers."""
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if cursor is not None:
            headers["Last-Event-ID"] = cursor
        return headers


class _Retry(Exception):
    """The connection ended or the server asked to come back later."""

    def __init__(self, why: str, *, streamed: bool = False) -> None:
        super().__init__(why)
        self.streamed = streamed


@dataclass
class Follower:
    """Prints events as they come and reconnects, resuming, when the connection drops.

    Example::

        Follower(FollowRequest(url, ("ops.*",)), on_event=print, on_note=warn).run(client)
    """

    request: FollowRequest
    on_event: Callable[[dict[str, Any]], None]
    on_note: Callable[[str], None]
    cursor: str | None = None
    ever_connected: bool = False

    def run(self, client: httpx.Client) -> NoReturn:
        """Follow until interrupted; SubscribeError for what retrying cannot fix."""
        delay = BACKOFF_FIRST_S
        while True:
            try:
                self._stream(client)
                streamed, why = True, "the server ended the stream"
            except _Retry as retry:
                streamed, why = retry.streamed, str(retry)
            except httpx.TransportError as error:
                if not self.ever_connected:
                    raise SubscribeError(f"cannot reach {self.request.url}: {error}") from None
                streamed, why = False, f"cannot reconnect ({type(error).__name__})"
            delay = BACKOFF_FIRST_S if streamed else min(delay * 2, BACKOFF_MAX_S)
            self.on_note(f"{why}; reconnecting in {delay:g} s")
            time.sleep(delay)

    def _stream(self, client: httpx.Client) -> None:
        url = f"{self.request.url.rstrip('/')}/events"
        params = self.request.params(self.cursor)
        headers = self.request.headers(self.cursor)
        with client.stream("GET", url, params=params, headers=headers) as response:
            _check_status(response)
            self.ever_connected = True
            try:
                for frame in sse_frames(response.iter_lines()):
                    self._handle(frame)
            except httpx.TransportError as error:
                raise _Retry(f"connection lost ({type(error).__name__})", streamed=True) from None

    def _handle(self, frame: SseFrame) -> None:
        if frame.id is not None:
            self.cursor = frame.id
        if frame.event == "gap":
            channels = _json_object(frame.data).get("channels", [])
            self.on_note(f"missed events on {', '.join(channels)} (restart or trimmed history)")
            return
        self.on_event(_json_object(frame.data))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SubscribeError(f"not a Pulseboard event: {text[:80]!r}")
    return value


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
            raise SubscribeError(f"{response.url} is not a Pulseboard event stream")
        return
    response.read()
    if status in RETRY_STATUSES or status >= 500:
        raise _Retry(f"the server answered {status}")
    raise SubscribeError(f"{status}: {error_text(response)}")


def error_text(response: httpx.Response) -> str:
    """The ``error`` of our JSON error body, or the start of whatever else came back."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
