"""Server-side sessions: revocation, sliding expiry, bounded memory."""

from __future__ import annotations

from app.sessions import MemorySessions, create_session_store
from app.settings import settings_from_dict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_expires_after_ttl_unused_and_slides_when_used() -> None:
    clock = Clock()
    store = MemorySessions(ttl_s=100, clock=clock)
    kept = await store.create("grant-a")
    idle = await store.create("grant-b")
    for _ in range(5):  # used every 60 s: 300 s later still alive
        clock.now += 60
        assert await store.grant_of(kept) == "grant-a"
    assert await store.grant_of(idle) is None
    clock.now += 100
    assert await store.grant_of(kept) is None


async def test_revoked_sessions_are_gone() -> None:
    store = MemorySessions(ttl_s=100)
    session_id = await store.create("grant-a")
    await store.revoke(session_id)
    assert await store.grant_of(session_id) is None
    await store.revoke(session_id)  # twice is fine
    assert await store.grant_of("never-issued") is None


async def test_memory_is_bounded() -> None:
    store = MemorySessions(ttl_s=100, max_sessions=3)
    ids = [await store.create(f"g{i}") for i in range(5)]
    assert len(store) == 3
    assert await store.grant_of(ids[0]) is None
    assert await store.grant_of(ids[-1]) == "g4"
    assert len(set(ids)) == 5


def test_the_store_follows_the_broker() -> None:
    memory = create_session_store(settings_from_dict({"auth": {"session_ttl": "30m"}}))
    assert isinstance(memory, MemorySessions)
    assert memory.ttl_s == 1800
    shared = create_session_store(settings_from_dict({"broker": {"url": "redis://127.0.0.1:1/0"}}))
    assert type(shared).__name__ == "RedisSessions"


async def test_a_kiosk_code_is_taken_once_and_expires() -> None:
    clock = Clock()
    store = MemorySessions(ttl_s=100, clock=clock)
    once = await store.create_code("value-a", ttl_s=60)
    late = await store.create_code("value-b", ttl_s=60)
    assert await store.take_code(once) == "value-a"
    assert await store.take_code(once) is None
    clock.now += 60
    assert await store.take_code(late) is None
    assert await store.take_code("never-issued") is None


async def test_kiosk_codes_are_bounded() -> None:
    store = MemorySessions(ttl_s=100, max_codes=3)
    codes = [await store.create_code(f"v{n}", ttl_s=60) for n in range(5)]
    assert [await store.take_code(code) for code in codes] == [None, None, "v2", "v3", "v4"]
