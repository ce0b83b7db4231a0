"""redis:// — one broker shared by many processes and hosts, on Redis Streams.

Keys, all under ``broker.key_prefix`` (``P``):

- ``P:epoch``: the deployment's epoch, created with SET NX. A Redis that comes
  back empty gets a new one, so cursors from before read as unknown (a gap).
- ``P:seq``: the global sequence; ``P:kinds`` and ``P:offsets``: each
  channel's kind and next offset (hashes).
- ``P:stream:<channel>``: the channel's events, entry id ``<seq>-0``, trimmed
  with ``MAXLEN ~ history`` (which keeps at least ``history`` entries).
- ``P:fanout``: every event, ``MAXLEN ~ fanout_max``; each process reads it.

One Lua script per publish checks the epoch and kind, takes the next seq and
the channel's offset and XADDs to both streams. Each process holds the local
fan-out part every broker holds (:mod:`app.broker.local`, its "mirror"):
loaded from the channel streams at start, then fed in seq order by one
``XREAD BLOCK`` loop on the fan-out stream. Subscribers therefore see exactly
what memory:// shows them. This class is the Redis log (scripts, keys,
reload) and its fan-out reader; it subclasses nothing.

Deliberate oddities:

- Replay and gap detection read the local rings, not XRANGE per client. A
  ring holds the channel's newest ``history`` events as on memory://; a ring
  loaded from Redis fetches one entry more than it keeps, so its dropped seq is
  exact and a trimmed cursor is a gap without XINFO (``MAXLEN ~`` does not move
  ``max-deleted-entry-id``).
- ``subscribe`` and ``history`` first wait until the reader has passed the
  fan-out's newest entry, so a cursor seen on another process is known here.
  ``publish`` does not wait: local subscribers are woken when the reader
  delivers the event, a fraction of a millisecond later.
- The mirror holds only events up to the reader's position (``local.seq``), never
  ahead: that keeps every subscriber's cross-channel order the publish order.
- Idle undeclared channels (``limits.channel_idle_ttl``) are swept by each
  process from its own mirror. Its Redis keys go too (``FORGET_LUA``: the
  channel's stream and its ``P:kinds`` entry), but only while ``P:offsets``
  still shows the offset this process last saw, so a channel someone has just
  published to stays. The ``P:offsets`` entry is kept (a few bytes a name): a
  name used again goes on from its old offset, so another process that still
  follows it (a subscriber there) sees no hole, and a process that had
  swept it starts the ring part-way, answering older cursors with a gap.
- ``limits.max_channels`` is checked by the publish script against
  ``P:kinds``, which holds every channel: it refuses a new name once that
  hash holds ``max_channels`` plus the channels this process declared (the
  processes of one deployment share a config, so they agree).
- A new epoch, or a hole in the fan-out (a reader that fell more than
  ``fanout_max`` entries behind), reloads the mirror and ends open
  subscriptions: clients reconnect with their cursor and get a replay or a gap.
- A Redis that came back empty (``FLUSHALL``, a restart without persistence)
  has forgotten every channel's kind. Each process remembers what it declared
  (the configured channels) and declares it again on every reload, before the
  new mirror serves anyone: otherwise the first post would fix the kind (a
  forged notify on a log channel, a chat post stored as notify, sources then
  crash-looping on the conflict). Until a process has reloaded, its publishes
  are refused (the script checks the epoch) and its old mirror still answers
  ``kind_of``, so no post slips in between.
- Commands are never retried by the driver: a publish whose reply was lost may
  have happened, so it is reported as unavailable, not repeated.
- redis-py can swallow a task's cancellation inside a command
  (redis/redis-py#2028); every call goes through ``_checked``, which raises it
  again, and ``close`` also disconnects the reader rather than trust cancel().
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.broker.base import (
    BrokerStats,
    BrokerUnavailable,
    ChannelInfo,
    ChannelLimit,
    HistoryPage,
    KindConflict,
    Start,
)
from app.broker.hub import ChannelLimits, ChannelLog, Hub
from app.broker.local import LocalFanout, SubscriptionScope, new_epoch
from app.events import Event, KindRegistry, State, format_event_id, parse_event_id
from app.settings import BrokerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_MS = 1000
READ_COUNT = 1000
LOAD_CHUNK = 100
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0

# KEYS: epoch, seq, kinds, offsets, fanout, stream, state
# ARGV: epoch, channel, kind, time, data, history, fanout_max, max_kinds, then state as
# key, value pairs (an empty value deletes the key)
PUBLISH_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'epoch'}
end
local kind = redis.call('HGET', KEYS[3], ARGV[2])
if kind and kind ~= ARGV[3] then
  return {'kind', kind}
end
if not kind then
  if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[8]) then
    return {'limit'}
  end
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
local seq = redis.call('INCR', KEYS[2])
local offset = string.format('%d', redis.call('HINCRBY', KEYS[4], ARGV[2], 1) - 1)
local id = string.format('%d-0', seq)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], id, 'o', offset, 't', ARGV[4], 'd', ARGV[5])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], id,
  'c', ARGV[2], 'k', ARGV[3], 'o', offset, 't', ARGV[4], 'd', ARGV[5])
for i = 9, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[7], ARGV[i])
  else
    redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
  end
end
return {'ok', seq, tonumber(offset)}
"""

# KEYS: kinds, offsets, stream; ARGV: channel, the next offset this process saw
FORGET_LUA = """
if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS: epoch; ARGV: stale epoch, fresh epoch
REPLACE_EPOCH_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
"""

Fields = dict[bytes, bytes]
Entry = tuple[bytes, Fields]


class RedisKeys:
    """The key names of one deployment (one ``key_prefix``)."""

    def __init__(self, prefix: str) -> None:
        self.epoch = f"{prefix}:epoch"
        self.seq = f"{prefix}:seq"
        self.kinds = f"{prefix}:kinds"
        self.offsets = f"{prefix}:offsets"
        self.fanout = f"{prefix}:fanout"
        self.state = f"{prefix}:state"
        self._stream = f"{prefix}:stream:"

    def stream(self, channel: str) -> str:
        """The stream holding ``channel``'s history."""
        return self._stream + channel

    def forget(self, channel: str) -> list[str]:
        """KEYS of the forget script."""
        return [self.kinds, self.offsets, self.stream(channel)]

    def publish(self, channel: str) -> list[str]:
        """KEYS of the publish script."""
        stream = self.stream(channel)
        return [self.epoch, self.seq, self.kinds, self.offsets, self.fanout, stream, self.state]


class RedisBroker:
    """Broker shared through Redis; see :class:`app.broker.base.Broker` for the contract.

    ``stats.errors`` counts the commands that failed (each publish, declare,
    lookup or catch-up that raised BrokerUnavailable or could not reach Redis,
    and each failure of the fan-out reader); ``stats.reconnects`` counts the
    reader's returns after one. Both are plain integers read by ``/metrics``.

    Example::

        broker = RedisBroker("redis://127.0.0.1:6379/0", kinds, settings.broker, max_lag=1000)
        await broker.start()
    """

    def __init__(
        self,
        url: str,
        kinds: KindRegistry,
        settings: BrokerSettings,
        max_lag: int,
        limits: ChannelLimits | None = None,
    ) -> None:
        self.kinds = kinds
        self.local = LocalFanout(kinds, settings.history, max_lag, limits or ChannelLimits())
        self.stats = BrokerStats()
        self.url = url
        self.keys = RedisKeys(settings.key_prefix)
        self._fanout_max = settings.fanout_max
        self._timeout_s = settings.timeout
        self._client = _client(url, settings.timeout)
        self._reader_client = _client(url, settings.timeout + BLOCK_MS / 1000)
        self._publish = self._client.register_script(PUBLISH_LUA)
        self._replace_epoch_script = self._client.register_script(REPLACE_EPOCH_LUA)
        self._forget = self._client.register_script(FORGET_LUA)
        self._ready = False
        self._declared: dict[str, str] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._progress = asyncio.Event()

    @property
    def epoch(self) -> str:
        """The deployment's epoch as this process last loaded it ("" while half loaded)."""
        return self.local.epoch

    async def start(self) -> None:
        """Load the mirror from Redis and start the fan-out reader.

        Raises:
            BrokerUnavailable: Redis cannot be reached (the message names the URL).
        """
        try:
            await self._reload()
        except RedisError as error:
            message = f"broker.url: cannot reach {redacted(self.url)}: {error}"
            raise BrokerUnavailable(message) from None
        self._reader = asyncio.create_task(self._follow_fanout(), name="redis-fanout-reader")

    async def close(self) -> None:
        """End every subscription, stop the reader, close the connections."""
        self.local.end_all("shutdown")
        self._closing = True
        self._ready = False
        if self._reader is not None:
            self._reader.cancel()
            await self._reader_client.connection_pool.disconnect()
            await asyncio.wait([self._reader])
        await self._client.aclose()
        await self._reader_client.aclose()

    @property
    def ready(self) -> bool:
        """True while the reader is connected and the mirror is in step with Redis."""
        return self._ready

    async def declare(self, channel: str, kind: str) -> None:
        """Record ``channel``'s kind in Redis unless it has one; KindConflict if it differs."""
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self.keys.kinds, channel, kind)
                pipe.hget(self.keys.kinds, channel)
                _created, existing = await _checked(pipe.execute())
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None
        if existing.decode() != kind:
            raise KindConflict(channel, existing.decode(), kind)
        self._declared[channel] = kind
        self.local.declare(channel, kind)

    async def kind_of(self, channel: str) -> str | None:
        """The channel's kind, from the mirror or else from Redis."""
        local = self.local.kind_of(channel)
        if local is not None:
            return local
        try:
            kind = await _checked(self._client.hget(self.keys.kinds, channel))
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None
        return _text(kind) if kind is not None else None

    async def publish(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Append one event in Redis; every process's reader delivers it to its subscribers.

        ``state`` is written by the same script call as the event (atomic in Redis).

        Raises:
            BrokerUnavailable: Redis is unreachable, refused the write, or lost its data.
            KindConflict: the channel exists with another kind.
        """
        now, epoch = time.time(), self.epoch
        args = self._publish_args(epoch, channel, kind, now, data, state)
        try:
            reply = await _checked(self._publish(keys=self.keys.publish(channel), args=args))
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None
        return self._published(reply, epoch, channel, kind, now, data)

    def _publish_args(
        self,
        epoch: str,
        channel: str,
        kind: str,
        now: float,
        data: dict[str, Any],
        state: State | None = None,
    ) -> list[str | bytes | int]:
        hub = self.local.hub
        max_kinds = self.local.limits.max_channels + len(hub.logs) - hub.undeclared
        args: list[str | bytes | int] = [epoch, channel, kind, repr(now), _encode(data)]
        args += [hub.history_size, self._fanout_max, max_kinds]
        for key, value in (state or {}).items():  # an empty value deletes the key
            args += [key, value or ""]
        return args

    def _published(
        self, reply: Any, epoch: str, channel: str, kind: str, now: float, data: dict[str, Any]
    ) -> Event:
        """The event the publish script's ``reply`` stands for, or its refusal raised."""
        if isinstance(reply, Exception):
            raise self._failure(f"Redis is unavailable: {reply}")
        if reply[0] == b"kind":
            raise KindConflict(channel, reply[1].decode(), kind)
        if reply[0] == b"limit":
            raise ChannelLimit(channel, self.local.limits.max_channels)
        if reply[0] == b"epoch":
            raise self._failure("Redis lost its data (a new epoch); resynchronising")
        seq, offset = int(reply[1]), int(reply[2])
        return Event(format_event_id(epoch, seq), channel, kind, now, data, seq, offset)

    async def sweep(self, now: float) -> list[str]:
        """Drop idle undeclared channels from the mirror, then their keys from Redis.

        Redis keys go only where no event came since this process last saw one
        (``FORGET_LUA``); a Redis that cannot be reached keeps them until a later
        sweep of another process (or forever, bounded by ``max_channels``).
        """
        dropped = self.local.sweep(now)
        try:
            for channel_log in dropped:
                keys, args = self.keys.forget(channel_log.name), [channel_log.name]
                args.append(str(channel_log.next_offset))
                await _checked(self._forget(keys=keys, args=args))
        except RedisError as error:
            self.stats.errors += 1
            log.warning("redis broker: idle channels kept in Redis: %s", error)
        return [channel_log.name for channel_log in dropped]

    async def publish_many(
        self,
        channel: str,
        kind: str,
        items: Sequence[dict[str, Any]],
        state: State | None = None,
    ) -> list[Event]:
        """Publish ``items`` in order: one script call each, all sent in one round trip.

        A pipeline, not a transaction: each call is the single-event script, so
        every event gets its own seq exactly as with :meth:`publish`, but the
        batch waits for Redis once instead of once per event (an NDJSON batch
        of 50 went at the pace of 50 round trips; docs/performance.md, issue 18.5).
        The first refused item raises, as a loop of :meth:`publish` would.
        ``state`` goes with the last item's script call (stored only if it is).

        Raises:
            BrokerUnavailable: Redis is unreachable, refused the write, or lost its data.
            KindConflict: the channel exists with another kind.
        """
        if len(items) < 2:
            return [await self.publish(channel, kind, data, state) for data in items]
        epoch, stamps = self.epoch, []
        keys = self.keys.publish(channel)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for index, data in enumerate(items):
                    stamps.append(time.time())
                    last = state if index == len(items) - 1 else None
                    args = self._publish_args(epoch, channel, kind, stamps[-1], data, last)
                    await self._publish(keys=keys, args=args, client=pipe)
                replies = await _checked(pipe.execute(raise_on_error=False))
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None
        return [
            self._published(reply, epoch, channel, kind, now, data)
            for reply, now, data in zip(replies, stamps, items, strict=True)
        ]

    async def load_state(self, prefix: str) -> dict[str, str]:
        """The deployment's state under ``prefix`` (one hash beside the streams)."""
        try:
            stored = await _checked(self._client.hgetall(self.keys.state))
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None
        pairs = ((_text(key), _text(value)) for key, value in stored.items())
        return {key: value for key, value in pairs if key.startswith(prefix)}

    async def save_state(self, state: State) -> None:
        """Store or (``None``) delete each key, in one MULTI."""
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key, value in state.items():
                    if value is None:
                        pipe.hdel(self.keys.state, key)
                    else:
                        pipe.hset(self.keys.state, key, value)
                await _checked(pipe.execute())
        except RedisError as error:
            raise self._failure(f"Redis is unavailable: {error}") from None

    def subscribe(self, patterns: Sequence[str], start: Start) -> SubscriptionScope:
        """Catch up with Redis, then place cursors exactly as memory:// does."""
        return self.local.subscribe(patterns, start, self._settle)

    async def history(
        self, channel: str, after: str | None, limit: int, since: float | None = None
    ) -> HistoryPage:
        """Retained events after ``after``, once the mirror has caught up with Redis."""
        await self._settle(after)
        return self.local.history(channel, after, limit, since)

    def channels(
        self,
        after: str | None = None,
        limit: int | None = None,
        visible: Callable[[str], bool] | None = None,
    ) -> list[ChannelInfo]:
        """Channels sorted by name, as this process's mirror has them."""
        return self.local.channels(after, limit, visible)

    def subscriber_counts(self, channels: Iterable[str]) -> dict[str, int]:
        """Subscribers of each of ``channels`` in this process."""
        return self.local.subscriber_counts(channels)

    def follows(self) -> int:
        """Subscribers summed over every channel, in this process."""
        return self.local.follows()

    async def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Retained events just before ``before``, once the mirror has caught up with Redis."""
        await self._settle(before)
        return self.local.before(channel, before, limit)

    # -- catching up ---------------------------------------------------------

    async def _settle(self, after: str | None) -> None:
        """Wait until the mirror holds everything published before now (and ``after``).

        With Redis away the mirror answers alone, unless ``after`` is one of our
        ids that this process has not read yet: then nobody can tell.
        """
        try:
            latest = await self._latest_seq()
        except (RedisError, BrokerUnavailable):
            self.stats.errors += 1
            if self._unread(after):
                raise BrokerUnavailable("Redis is unreachable; retry later") from None
            return
        await self._reader_at(latest)

    def _unread(self, after: str | None) -> bool:
        parsed = parse_event_id(after) if after is not None else None
        return parsed is not None and parsed[0] == self.epoch and parsed[1] > self.local.seq

    async def _latest_seq(self) -> int:
        """The seq of the fan-out's newest entry, in this process's epoch."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.epoch)
            pipe.xrevrange(self.keys.fanout, count=1)
            epoch, newest = await _checked(pipe.execute())
        if epoch is None or epoch.decode() != self.epoch:
            raise BrokerUnavailable("Redis lost its data (a new epoch); resynchronising")
        return _seq_of(newest[0][0]) if newest else 0

    async def _reader_at(self, seq: int) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                while self.local.seq < seq:
                    await self._progress.wait()
        except TimeoutError:
            raise self._failure("the Redis fan-out reader is behind; retry later") from None

    def _failure(self, message: str) -> BrokerUnavailable:
        self.stats.errors += 1
        return BrokerUnavailable(message)

    def _advanced(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    # -- the fan-out reader --------------------------------------------------

    async def _follow_fanout(self) -> None:
        """Read the fan-out stream until closed; on any error retry with backoff and jitter.

        The reader must outlive every failure: a dead reader would leave the
        process ready but deaf.
        """
        failures = 0
        while not self._closing:
            try:
                if failures:
                    await self._resume()
                await self._read_once()
                failures = 0
            except Exception as error:
                if self._closing:
                    return
                self._ready = False
                self.stats.errors += 1
                failures += 1
                delay = _backoff_s(failures)
                unexpected = not isinstance(error, RedisError | BrokerUnavailable)
                log.warning(
                    "redis fan-out: %s; retrying in %.2fs", error, delay, exc_info=unexpected
                )
                await asyncio.sleep(delay)

    async def _resume(self) -> None:
        """Back after an error: same epoch → carry on from the last id; else reload.

        A Redis whose sequence went backwards (restored from an older snapshot,
        or a replica promoted before it had every write) would hand out ids
        clients have already seen: it gets a new epoch, so they get a gap.
        """
        epoch = await self._ensure_epoch()
        if epoch == self.epoch and await self._rewound():
            log.warning("redis fan-out: Redis went back before seq %d; new epoch", self.local.seq)
            epoch = await self._replace_epoch(epoch)
        if epoch != self.epoch:
            await self._reload()
        self._ready = True
        self.stats.reconnects += 1
        log.info("redis fan-out: reconnected at seq %d", self.local.seq)

    async def _read_once(self) -> None:
        async with self._reader_client.pipeline(transaction=False) as pipe:
            pipe.xread({self.keys.fanout: f"{self.local.seq}-0"}, count=READ_COUNT, block=BLOCK_MS)
            pipe.get(self.keys.epoch)
            streams, epoch = await _checked(pipe.execute())
        if epoch is None or epoch.decode() != self.epoch:
            log.warning("redis fan-out: Redis has a new epoch; reloading")
            await self._reload()
            return
        for entry_id, fields in streams[0][1] if streams else ():
            if not await self._deliver(_seq_of(entry_id), fields):
                return
        self._advanced()

    async def _deliver(self, seq: int, fields: Fields) -> bool:
        """Append one fan-out entry to its ring; False when a hole forced a reload."""
        channel, kind = fields[b"c"].decode(), fields[b"k"].decode()
        offset = int(fields[b"o"])
        channel_log = self._ring(self.local.hub, channel, kind)
        if channel_log is not None and channel_log.next_offset == 0 < offset:
            channel_log.start_at(offset, seq - 1)  # a name swept here, used again
        hole = channel_log is not None and offset != channel_log.next_offset
        if seq != self.local.seq + 1 or hole:
            log.warning("redis fan-out: hole before seq %d (reader fell behind); reloading", seq)
            await self._reload()
            return False
        if channel_log is None:
            self.local.seq = seq  # a kind unknown here: nothing to store, the position moves on
        else:
            self.local.append(channel_log, self._event(seq, channel, kind, offset, fields))
        return True

    # -- loading the mirror ---------------------------------------------------

    async def _ensure_epoch(self) -> str:
        candidate = new_epoch()
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.epoch, candidate, nx=True)
            pipe.get(self.keys.epoch)
            _created, epoch = await _checked(pipe.execute())
        return str(epoch.decode())

    async def _rewound(self) -> bool:
        seq = await _checked(self._client.get(self.keys.seq))
        return int(seq or 0) < self.local.seq

    async def _replace_epoch(self, stale: str) -> str:
        """Swap ``stale`` for a new epoch, unless another process already did."""
        fresh = new_epoch()
        reply = await _checked(
            self._replace_epoch_script(keys=[self.keys.epoch], args=[stale, fresh])
        )
        return _text(reply)

    async def _reload(self) -> None:
        """Rebuild the mirror from Redis, then end the subscriptions of the old one."""
        self.local.epoch = epoch = await self._ensure_epoch()
        try:
            await self._declare_again()
            latest = await self._latest_seq()
            stored = await _checked(self._client.hgetall(self.keys.kinds))
            kinds = {_text(name): _text(kind) for name, kind in stored.items()}
            hub = self.local.empty_hub()
            names = sorted(kinds)
            for start in range(0, len(names), LOAD_CHUNK):
                await self._load(hub, names[start : start + LOAD_CHUNK], kinds, latest)
        except BaseException:
            self.local.epoch = ""  # half loaded: the next attempt must reload from scratch
            raise
        self.local.replace(hub, latest)
        self._ready = True
        self._advanced()
        log.info("redis broker: epoch %s, seq %d, %d channels", epoch, latest, len(names))

    async def _declare_again(self) -> None:
        """Record the kinds this process declared, for a Redis that forgot them (HSETNX).

        A kind already there stays (another process's config, or a publish that
        came first): it is logged, and the mirror shows what Redis holds.
        """
        if not self._declared:
            return
        declared = list(self._declared.items())
        async with self._client.pipeline(transaction=True) as pipe:
            for channel, kind in declared:
                pipe.hsetnx(self.keys.kinds, channel, kind)
                pipe.hget(self.keys.kinds, channel)
            replies = await _checked(pipe.execute())
        for (channel, kind), stored in zip(declared, replies[1::2], strict=True):
            if _text(stored) != kind:
                self.stats.errors += 1
                log.error("redis broker: %s", KindConflict(channel, _text(stored), kind))

    async def _load(self, hub: Hub, names: list[str], kinds: dict[str, str], latest: int) -> None:
        """Fill the rings of ``names`` with their newest events up to ``latest``."""
        retained = hub.history_size + 1
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xrevrange(self.keys.stream(name), max=f"{latest}-0", count=retained)
            tails: list[list[Entry]] = await _checked(pipe.execute())
        for name, tail in zip(names, tails, strict=True):
            channel_log = self._ring(hub, name, kinds[name])
            if channel_log is not None:
                self._fill(channel_log, tail)

    def _fill(self, channel_log: ChannelLog, newest_first: list[Entry]) -> None:
        events = [
            self._event(_seq_of(entry_id), channel_log.name, channel_log.kind, int(f[b"o"]), f)
            for entry_id, f in reversed(newest_first)
        ]
        if not events:
            return
        first = events[0]
        channel_log.start_at(first.offset, first.seq - 1 if first.offset else 0)
        for event in events:
            channel_log.append(event)

    def _ring(self, hub: Hub, channel: str, kind: str) -> ChannelLog | None:
        if kind not in self.kinds:
            log.warning("redis broker: channel %s has kind %s, unknown here", channel, kind)
            return None
        return hub.log(channel, kind)

    def _event(self, seq: int, channel: str, kind: str, offset: int, fields: Fields) -> Event:
        return Event(
            id=format_event_id(self.epoch, seq),
            channel=channel,
            kind=kind,
            time=float(fields[b"t"]),
            data=msgspec.json.decode(fields[b"d"]),
            seq=seq,
            offset=offset,
        )


async def _checked(call: Awaitable[T]) -> T:
    """Await a redis-py call, re-raising a cancellation it swallowed (redis/redis-py#2028)."""
    result = await call
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    return result


def _client(url: str, timeout_s: float) -> Redis:
    """A client that never retries on its own (a retried publish could publish twice)."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _encode(data: dict[str, Any]) -> bytes:
    return msgspec.json.encode(data)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0])


def _backoff_s(failures: int) -> float:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures, 16))
    return random.uniform(BACKOFF_MIN_S, ceiling)


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def reachable(url: str, timeout_s: float) -> str | None:
    """None when Redis at ``url`` answers PING, else what went wrong (for a start-up message)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"cannot reach {redacted(url)}: {error}"
    finally:
        client.close()
    return None
