"""An SSE client over a real socket (httpx), parsing frames as they arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

import httpx

from tests.support.sse_parser import ParsedEvent, SSEParser


class SSEStream:
    """``async with SSEStream(url) as stream: event = await stream.next_event()``."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.parser = SSEParser()
        self.response: httpx.Response | None = None
        self.ended = asyncio.Event()
        self._news = asyncio.Event()
        self._read = 0
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SSEStream:
        request = self._client.build_request("GET", self.url, headers=self.headers)
        self.response = await self._client.send(request, stream=True)
        if self.response.status_code == 200:
            self._pump = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        assert self.response is not None
        await self.response.aclose()
        await self._client.aclose()

    async def _run(self) -> None:
        assert self.response is not None
        try:
            async for chunk in self.response.aiter_raw():
                self.parser.feed(chunk)
                self._news.set()
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self._news.set()

    async def next_event(self, within: float = 15.0) -> ParsedEvent:
        """The next dispatched event; TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            while self._read >= len(self.parser.events):
                if self.ended.is_set():
                    raise EOFError("stream ended")
                self._news.clear()
                await self._news.wait()
        event = self.parser.events[self._read]
        self._read += 1
        return event

    async def events(self, count: int, within: float = 30.0) -> list[ParsedEvent]:
        """The next ``count`` events, all within ``within`` seconds."""
        async with asyncio.timeout(within):
            return [await self.next_event(within) for _ in range(count)]

    async def wait_for(self, check: Callable[[], bool], within: float = 15.0) -> None:
        """Wait until ``check()`` holds after some bytes arrived."""
        async with asyncio.timeout(within):
            while not check():
                if self.ended.is_set():
                    raise EOFError("stream ended")
                self._news.clear()
                await self._news.wait()
