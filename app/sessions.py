"""Browser sessions kept on the server, so that signing out and expiry really end them.

The session cookie (quart-auth, signed) names a random session id; the store
maps it to the grant id of the token that signed in. ``/logout`` deletes the
entry, and an entry unused for ``auth.session_ttl`` expires (sliding: each
use restarts the clock). A cookie copied before logout is worth nothing after.

On ``memory://`` the store lives in the process; on a shared broker it lives
in Redis (``<key_prefix>:session:<id>``, ``GETEX`` renews it in the same round
trip), so a logout on one gateway ends the session on all of them.

The same store keeps kiosk codes (``pulseboard kiosk-link``): a one-time
code names what its session will be; taking it deletes it (``GETDEL`` on
Redis), so two gateways can never both redeem one code. Codes live where
sessions live because the gateway that created one (the CLI asks the running
server) is not always the one that redeems it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Protocol

from app.settings import Settings

MAX_MEMORY_SESSIONS = 100_000
MAX_MEMORY_CODES = 10_000


class SessionStore(Protocol):
    """Where session ids live; every method may raise BrokerUnavailable (a 503)."""

    async def create(self, grant_id: str) -> str:
        """A new session id for ``grant_id``."""
        ...

    async def grant_of(self, session_id: str) -> str | None:
        """The grant id of a live session (renewing it), None when unknown or expired."""
        ...

    async def revoke(self, session_id: str) -> None:
        """End the session now."""
        ...

    async def create_code(self, value: str, ttl_s: float) -> str:
        """A one-time code that ``take_code`` answers with ``value`` until ``ttl_s`` passes."""
        ...

    async def take_code(self, code: str) -> str | None:
        """The code's value, deleting it; None when unknown, used or expired."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def new_session_id() -> str:
    """An unguessable id (256 bits)."""
    return secrets.token_urlsafe(32)


def new_code() -> str:
    """An unguessable one-time code (192 bits), short enough for a URL someone copies."""
    return secrets.token_urlsafe(24)


def _room_for_one(
    entries: dict[str, tuple[str, float]], cap: int, now: float
) -> dict[str, tuple[str, float]]:
    """``entries`` (value, expiry) with room for one more: past ``cap`` the expired ones go,
    then the oldest (a dict keeps insertion order)."""
    if len(entries) >= cap:
        entries = {k: v for k, v in entries.items() if v[1] > now}
    while len(entries) >= cap:
        del entries[next(iter(entries))]
    return entries


class MemorySessions:
    """Sessions in this process: a dict of id → (grant id, expiry), bounded in size."""

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = MAX_MEMORY_SESSIONS,
        max_codes: int = MAX_MEMORY_CODES,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_sessions = max_sessions
        self.max_codes = max_codes
        self._sessions: dict[str, tuple[str, float]] = {}
        self._codes: dict[str, tuple[str, float]] = {}

    async def create(self, grant_id: str) -> str:
        """A new session; the oldest ones are dropped past ``max_sessions``."""
        now = self.clock()
        self._sessions = _room_for_one(self._sessions, self.max_sessions, now)
        session_id = new_session_id()
        self._sessions[session_id] = (grant_id, now + self.ttl_s)
        return session_id

    async def grant_of(self, session_id: str) -> str | None:
        """The grant id, renewing the session for another ``ttl_s``; None once expired."""
        entry = self._sessions.get(session_id)
        now = self.clock()
        if entry is None:
            return None
        if entry[1] <= now:
            del self._sessions[session_id]
            return None
        self._sessions[session_id] = (entry[0], now + self.ttl_s)
        return entry[0]

    async def revoke(self, session_id: str) -> None:
        """Forget the session."""
        self._sessions.pop(session_id, None)

    async def create_code(self, value: str, ttl_s: float) -> str:
        """A one-time code; past ``max_codes`` expired ones go, then the oldest."""
        now = self.clock()
        self._codes = _room_for_one(self._codes, self.max_codes, now)
        code = new_code()
        self._codes[code] = (value, now + ttl_s)
        return code

    async def take_code(self, code: str) -> str | None:
        """The value of a live code, which is gone afterwards."""
        entry = self._codes.pop(code, None)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._sessions)


def create_session_store(settings: Settings) -> SessionStore:
    """Redis when the broker is shared (every gateway sees a logout), else memory."""
    ttl_s = settings.auth.session_ttl_s
    broker = settings.broker
    if broker.shared:
        from app.redis_sessions import RedisSessions

        return RedisSessions(broker.url, broker.key_prefix, ttl_s, broker.timeout)
    return MemorySessions(ttl_s)
