"""The SQLite log under sqlite://: blocking calls on one connection, no asyncio.

The broker (:mod:`app.broker.sqlite`) calls these from one thread at a time
(``asyncio.to_thread``, serialised by its commit task), never on the loop.
One :meth:`SqliteLog.commit` is one transaction for a whole batch of events
(group commit); its ``state`` (source checkpoints, consumer cursors, rows of
``meta`` under ``state:``) is committed in the same transaction as the events.

Deliberate oddities:
- the last seq is the newest row's, or ``meta``'s ``last_seq``, written only
  before rows are deleted, so trimming every event away never lets a restart
  hand out an id twice (and a commit that only inserts writes two pages);
- a commit trims a channel only every :func:`trim_step` events, so a channel
  may hold up to a tenth (at most 1,000 events) more than it keeps until then
  or until the broker's periodic :meth:`SqliteLog.trim`: trimming every
  commit cost more than the insert itself;
- one server per file: a ``flock`` on ``<db>.lock`` (not ``locking_mode =
  EXCLUSIVE``, which would also lock out ``sqlite3 .backup``).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.broker.local import new_epoch
from app.events import Event, State, format_event_id

STATE_PREFIX = "state:"  # meta rows holding state (checkpoints, cursors), not the store's own

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL,
    offset INTEGER NOT NULL, time REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_channel ON events (channel, seq);
"""


TRIM_STEP_MAX = 1000
# A scanned row's time as its line states it (logtail's ``ts``), else when it was read
LINE_TIME = "coalesce(json_extract(data, '$.ts'), time)"

REGEX_SYNTAX = frozenset("\\.^$|?*+()[]{}")


class StoreError(Exception):
    """The database cannot be opened or used (one line, for the operator)."""


@dataclass(frozen=True)
class Retention:
    """How much the database keeps: per channel, ``history`` at least (0: no such bound)."""

    history: int
    max_events: int = 0
    max_age_s: float = 0.0
    max_bytes: int = 0

    @property
    def keep(self) -> int:
        """Events kept per channel by count: ``history``, or ``max_events`` when more."""
        return max(self.history, self.max_events)


def trim_step(keep: int) -> int:
    """Events a channel may grow past ``keep`` before a commit trims it: a tenth, at most 1,000.

    >>> trim_step(5), trim_step(1000), trim_step(100_000)
    (1, 100, 1000)
    """
    return max(1, min(keep // 10, TRIM_STEP_MAX))


def database_path(url: str) -> Path:
    """The file a ``sqlite:///relative`` or ``sqlite:////absolute`` URL names.

    >>> database_path("sqlite:///.pulseboard/p.db"), database_path("sqlite:////var/p.db")
    (PosixPath('.pulseboard/p.db'), PosixPath('/var/p.db'))
    """
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        raise ValueError(
            f"broker.url: expected sqlite:///relative.db or sqlite:////abs.db: {url!r}"
        )
    return Path(url.removeprefix("sqlite:///"))


class SqliteLog:
    """One open database: the epoch, the last seq, and the events kept."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self._lock: IO[bytes] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = self._take_lock(path)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
            self.db.executescript(SCHEMA)
            self.epoch = self._meta("epoch") or self._set_meta("epoch", new_epoch())
            newest = self.db.execute("SELECT max(seq) FROM events").fetchone()[0]
            self.last_seq = max(int(self._meta("last_seq") or 0), newest or 0)
        except (sqlite3.Error, OSError) as error:
            self.close()
            raise StoreError(f"cannot use the database {str(path)!r}: {_reason(error)}") from None

    @property
    def synchronous(self) -> int:
        """PRAGMA synchronous as SQLite reports it (1 NORMAL, 2 FULL)."""
        row = self.db.execute("PRAGMA synchronous").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the connection and release the file."""
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def commit(self, events: Iterable[Event], keep: int, state: State | None = None) -> None:
        """Store ``events`` and ``state`` (``None`` deletes a key) in one transaction, or nothing.

        The same transaction trims a channel it writes to to its newest ``keep`` events
        when one of them is a :func:`trim_step` multiple of the channel's offsets.
        """
        rows = [
            (e.seq, e.channel, e.kind, e.offset, e.time, json.dumps(e.data, ensure_ascii=False))
            for e in events
        ]
        if not rows and not state:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            last = self.last_seq
            if rows:
                db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
                last = max(last, *(row[0] for row in rows))
                step = trim_step(keep)
                due = {row[1] for row in rows if row[3] % step == 0}
                if due:
                    self._set_meta("last_seq", str(last))
                for channel in due:
                    self._trim_count(channel, keep)
            for key, value in (state or {}).items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE key = ?", (STATE_PREFIX + key,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", (STATE_PREFIX + key, value)
                    )
            db.execute("COMMIT")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.last_seq = last

    def load_state(self, prefix: str) -> dict[str, str]:
        """The committed state whose keys start with ``prefix``."""
        start = STATE_PREFIX + prefix
        rows = self.db.execute(
            "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (start, start + "\U0010ffff")
        )
        return {str(key).removeprefix(STATE_PREFIX): str(value) for key, value in rows}

    def channels(self) -> list[tuple[str, str]]:
        """Every channel with events kept, with its kind."""
        rows = self.db.execute("SELECT channel, kind FROM events GROUP BY channel").fetchall()
        return [(str(name), str(kind)) for name, kind in rows]

    def newest(self, channel: str, count: int) -> list[Event]:
        """The newest ``count`` events of ``channel``, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM (SELECT seq, channel, kind, offset, time, data FROM events"
            " WHERE channel = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            (channel, count),
        ).fetchall()
        return [self._event(row) for row in rows]

    def after(self, channel: str, seq: int, limit: int) -> tuple[list[Event], bool]:
        """Up to ``limit`` events of ``channel`` after ``seq``; True when some were trimmed."""
        rows = self.db.execute(
            "SELECT seq, channel, kind, offset, time, data FROM events"
            " WHERE channel = ? AND seq > ? ORDER BY seq LIMIT ?",
            (channel, seq, limit),
        ).fetchall()
        events = [self._event(row) for row in rows]
        before = self.db.execute(
            "SELECT offset FROM events WHERE channel = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (channel, seq),
        ).fetchone()
        expected = before[0] + 1 if before else 0
        return events, bool(events) and events[0].offset != expected

    def before(self, channel: str, seq: int | None, limit: int) -> list[Event]:
        """Up to ``limit`` events of ``channel`` before ``seq`` (None: the newest), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM (SELECT seq, channel, kind, offset, time, data FROM events"
            " WHERE channel = ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            (channel, seq if seq is not None else 2**62, limit),
        ).fetchall()
        return [self._event(row) for row in rows]

    def scan_lines(
        self, channel: str, seq: int | None, count: int, pattern: Any
    ) -> tuple[list[Event], tuple[int, float] | None, bool]:
        """Of the ``count`` events of ``channel`` before ``seq``, those whose ``line`` matches.

        Returns the matches (oldest first), the oldest scanned ``(seq, time)`` (its line's
        own ``ts`` when it states one; None when none was left) and whether nothing older
        remains. SQLite reads the line (``json_extract``) and RE2 tests it in a function of
        this connection: only the matches are decoded into events, which is what makes a
        search over a million lines take seconds rather than a minute.
        """
        top = seq if seq is not None else 2**62
        db = self.db
        floor = db.execute(
            f"SELECT seq, {LINE_TIME} FROM events WHERE channel = ? AND seq < ?"
            " ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (channel, top, count - 1),
        ).fetchone()
        end = floor is None
        if end:
            floor = db.execute(
                f"SELECT seq, {LINE_TIME} FROM events WHERE channel = ? AND seq < ?"
                " ORDER BY seq LIMIT 1",
                (channel, top),
            ).fetchone()
        if floor is None:
            return [], None, True
        literal = plain_literal(pattern)
        argument: str | int
        if literal is not None:  # SQLite's instr finds it without a call into Python per row
            test, argument = "instr(json_extract(data, '$.line'), ?) > 0", literal
        else:
            search = pattern.search
            db.create_function(
                "pb_line_matches",
                1,
                lambda text: text is not None and search(text) is not None,
                deterministic=True,
            )
            test, argument = "pb_line_matches(json_extract(data, '$.line')) = ?", 1
        rows = db.execute(
            "SELECT seq, channel, kind, offset, time, data FROM events"
            f" WHERE channel = ? AND seq < ? AND seq >= ? AND {test} ORDER BY seq",
            (channel, top, floor[0], argument),
        ).fetchall()
        return [self._event(row) for row in rows], (int(floor[0]), float(floor[1])), end

    def drop_channels(self, channels: Iterable[str]) -> None:
        """Forget ``channels`` (swept): a restart must not bring them back."""
        self._set_meta("last_seq", str(self.last_seq))
        self.db.executemany("DELETE FROM events WHERE channel = ?", [(c,) for c in channels])

    def trim(self, retention: Retention, now: float) -> int:
        """Delete what retention no longer keeps, oldest first; how many events went.

        Per channel the newest ``history`` events always stay; beyond them an
        event goes when it is past ``keep`` or older than ``max_age_s``;
        then the oldest events of the whole file go while it exceeds ``max_bytes``.
        """
        db = self.db
        deleted = 0
        self._set_meta("last_seq", str(self.last_seq))
        for (channel,) in db.execute("SELECT DISTINCT channel FROM events").fetchall():
            deleted += self._trim_count(channel, retention.keep)
            floor = db.execute(
                "SELECT seq FROM events WHERE channel = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (channel, retention.history - 1),
            ).fetchone()
            if retention.max_age_s and floor is not None:
                deleted += db.execute(
                    "DELETE FROM events WHERE channel = ? AND seq < ? AND time < ?",
                    (channel, floor[0], now - retention.max_age_s),
                ).rowcount
        if retention.max_bytes:
            deleted += self._trim_bytes(retention.max_bytes)
        return deleted

    def size_bytes(self) -> int:
        """Bytes the database's pages take (the main file once checkpointed)."""
        count = self.db.execute("PRAGMA page_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return int(count) * int(size)

    def _trim_count(self, channel: str, keep: int) -> int:
        cut = self.db.execute(
            "SELECT seq FROM events WHERE channel = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (channel, keep),
        ).fetchone()
        if cut is None:
            return 0
        deleted: int = self.db.execute(
            "DELETE FROM events WHERE channel = ? AND seq <= ?", (channel, cut[0])
        ).rowcount
        return deleted

    def _trim_bytes(self, max_bytes: int) -> int:
        deleted = 0
        db = self.db
        while self._used_bytes() > max_bytes:
            count = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            if not count:
                break
            step = max(1, count // 20)  # about 5 % at a time: a page freed is seen at once
            oldest = db.execute(
                "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?", (step - 1,)
            ).fetchone()
            deleted += db.execute("DELETE FROM events WHERE seq <= ?", (oldest[0],)).rowcount
        return deleted

    def _used_bytes(self) -> int:
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return self.size_bytes() - int(free) * int(size)

    def _event(self, row: tuple[Any, ...]) -> Event:
        seq, channel, kind, offset, time, data = row
        return Event(
            format_event_id(self.epoch, seq), channel, kind, time, json.loads(data), seq, offset
        )

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> str:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        return value

    @staticmethod
    def _take_lock(path: Path) -> IO[bytes]:
        lock = open(f"{path}.lock", "ab")  # noqa: SIM115  # held open for the store's lifetime
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StoreError(f"the database {str(path)!r} is in use by another process") from None
        return lock


def plain_literal(pattern: Any) -> str | None:
    """The text a compiled RE2 ``pattern`` is, when it is plain text matched case-sensitively.

    Such a pattern matches a line exactly when the line contains that text, which
    SQLite's ``instr`` tests without leaving C.

    >>> import re2
    >>> plain_literal(re2.compile("order 42")), plain_literal(re2.compile("order.42"))
    ('order 42', None)
    """
    text = str(pattern.pattern)
    if not text or REGEX_SYNTAX.intersection(text) or not pattern.options.case_sensitive:
        return None
    return text


def check_database(url: str) -> str | None:
    """Why ``serve`` cannot use the database ``url`` names (corrupt, locked, unwritable)."""
    try:
        SqliteLog(database_path(url)).close()
    except (StoreError, ValueError) as error:
        return str(error).removeprefix("broker.url: ")
    return None


def inspect_database(url: str) -> str | None:
    """What ``check-config`` says about the database: like :func:`check_database`, but
    read-only (it creates nothing) and silent about the lock a running server holds."""
    path = database_path(url)
    if not path.exists():
        parent = next(p for p in path.absolute().parents if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            return f"cannot create the database {str(path)!r}: {str(parent)!r} is not writable"
        return None
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.Error as error:
        return f"cannot use the database {str(path)!r}: {_reason(error)}"
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
