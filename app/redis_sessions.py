"""Sessions in Redis (see app/sessions.py): a logout on one gateway ends the session on all."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.broker.base import BrokerUnavailable
from app.sessions import new_code, new_session_id


class RedisSessions:
    """Sessions in Redis, shared by every gateway of the deployment."""

    def __init__(self, url: str, key_prefix: str, ttl_s: float, timeout_s: float) -> None:
        self.prefix = f"{key_prefix}:session:"
        self.code_prefix = f"{key_prefix}:kiosk-code:"
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self._client = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    async def create(self, grant_id: str) -> str:
        """A new session id, stored with the TTL."""
        session_id = new_session_id()
        try:
            await self._client.set(self.prefix + session_id, grant_id, px=self.ttl_ms)
        except RedisError as error:
            raise BrokerUnavailable(f"cannot store the session: {error}") from None
        return session_id

    async def grant_of(self, session_id: str) -> str | None:
        """The grant id, renewing the TTL in the same command."""
        try:
            value = await self._client.getex(self.prefix + session_id, px=self.ttl_ms)
        except RedisError as error:
            raise BrokerUnavailable(f"cannot read the session: {error}") from None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def revoke(self, session_id: str) -> None:
        """Delete the session for every gateway."""
        try:
            await self._client.delete(self.prefix + session_id)
        except RedisError as error:
            raise BrokerUnavailable(f"cannot end the session: {error}") from None

    async def create_code(self, value: str, ttl_s: float) -> str:
        """A one-time code, stored with its own TTL."""
        code = new_code()
        try:
            await self._client.set(self.code_prefix + code, value, px=max(1, round(ttl_s * 1000)))
        except RedisError as error:
            raise BrokerUnavailable(f"cannot store the kiosk code: {error}") from None
        return code

    async def take_code(self, code: str) -> str | None:
        """The code's value; ``GETDEL`` makes the read and the delete one step for every gateway."""
        try:
            value = await self._client.getdel(self.code_prefix + code)
        except RedisError as error:
            raise BrokerUnavailable(f"cannot read the kiosk code: {error}") from None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def close(self) -> None:
        """Disconnect."""
        await self._client.aclose()
