"""The ``logtail`` source: ``tail -F`` of a path or a glob, one ``log`` event per line.

Payload: ``{"line": str, "file": <file name>, "level": "error"|"warn"|"info"|"debug"|None,
"ts": <the line's own time>|None, "lineno": <its number in the file>|None}`` (time and
level as :mod:`app.sources.logtail.logformat` reads them).
``line`` is plain text: ANSI escape codes are stripped (no colour field is
carried), invalid UTF-8 is replaced, an over-long line is cut with a visible
marker (see :mod:`app.sources.logtail.lines`).

How it follows, and deliberate oddities (do not "fix"):
- The parent directory is watched (a watch on the file itself dies with the
  first rename), with a short debounce so an appended line is published within
  milliseconds. The watcher only says *when* to look; *what* changed is read
  from stat results and the bytes themselves, and every file is also checked
  on a 250 ms tick, so a lost or merged notification costs latency, never a line.
- ``poll = true``: watchfiles' polling watcher misses many appends (it compares
  mtimes), so in that mode every file is checked every 50 ms instead.
- Files seen for the first time at start (no checkpoint) begin with their
  last ``lines`` lines; files that appear later (created, re-created, the new
  file after a rotation) are read from their first byte.
- Checkpoints (:mod:`app.sources.logtail.checkpoint`): every line is published
  with its name's checkpoint (each file's device, inode, first-KiB fingerprint
  and the offset after the last published line, a line published by the flush
  timeout included), committed with the event. A restart (or a crash) continues
  exactly there: lines written while the server was down are delivered, none
  twice. A file rotated away meanwhile is found in the directory by identity
  (renamed: device, inode and fingerprint; copytruncated: the copy with the
  fingerprint) and read to its end first. A name whose file is not the
  checkpointed one (replaced, or truncated without a copy) is read from byte 0,
  which loses nothing; a checkpoint whose files are all gone is dropped. A file
  opened under a name without a checkpoint gets one at once, before any line
  (stored through ``save_state``, its offset where reading starts): an empty
  file, or one started at its end with ``lines = 0``, continues after a
  restart with the lines written meanwhile instead of counting as new.
- A file rotated away (renamed or deleted) stays open and is drained until it
  has been idle for ``flush_timeout``: a writer that appends to the old file for
  a moment after the rename loses nothing. Each time new bytes are read from the
  new file, the old one is read again *before* they are published, so a
  writer's lines keep their order across the switch.
- copytruncate and truncation: see :mod:`app.sources.logtail.rotation`; the lines not
  yet read when the file was truncated are read from the rotated copy.
- A partial line is held until its newline arrives or no byte has arrived for
  ``flush_timeout`` seconds; a rotated or truncated file's last partial line is
  published as it is.
- With a glob, rotated copies must not match it (``*.log``, not ``*.log*``),
  or they are followed as files of their own.
- Which files may be read is :mod:`app.sources.logtail.access`'s rule, checked at
  every open (a file that appears, or the new file after a rotation): a name
  swapped for a symlink out of the allowed directories is refused on re-open.
  A refusal is logged once per file and reason, and counted in ``stats.refused``.
- ``lineno`` is the line's number in its file: known when the file is read from
  its first byte, and after a backfill that skipped at most ``LINE_COUNT_MAX_BYTES``
  (the skipped lines are counted) or from a checkpoint that knew it; None
  otherwise, until the file is truncated or replaced. A partial line published
  by the flush timeout and the rest of it that follows share one number.
- ``stats.lag_bytes`` is measured when a file is read (an ``fstat`` after each
  read), not at scrape time, so it can be up to a tick old.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from glob import has_magic
from typing import Annotated, Any

import msgspec
from watchfiles import awatch

from app.events import Event, PayloadError, State, validate_channel
from app.sources.base import Publish, SaveState, SourceType, pause_unless_stopped
from app.sources.logtail.access import REASONS, SYSTEM_DIRS, is_within, real_dirs, refusal
from app.sources.logtail.checkpoint import (
    FINGERPRINT_BYTES,
    KEY_PREFIX,
    Candidate,
    FileMark,
    Resume,
    decode_marks,
    encode_marks,
    fingerprint,
    grow_head,
    resume_plan,
    state_key,
)
from app.sources.logtail.lines import LineSplitter, RawLine, backfill_offset, line_text
from app.sources.logtail.logformat import line_facts
from app.sources.logtail.rotation import (
    MATCH_BYTES,
    FileId,
    PathState,
    after_check,
    copy_matches,
    keep_tail,
    match_window,
    path_state,
    rotated_names,
)

log = logging.getLogger("pulseboard.sources.logtail")

READ_CHUNK_BYTES = 256 * 1024
CHECK_BYTES = 64
DEBOUNCE_MS = 50
STEP_MS = 5
TICK_MS = 250
POLL_DELAY_MS = 50
COPY_CANDIDATES = 5
BACKFILL_MAX_BYTES = 64 * 1024 * 1024
LINE_COUNT_MAX_BYTES = 32 * 1024 * 1024
_CHANNEL_JUNK = re.compile(r"[^a-z0-9_-]+")
ROTATION_KINDS = ("rename", "copytruncate", "truncate")


class LogTailConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[sources]] type = "logtail"``: what to follow and how."""

    type: str
    path: str
    channel: str | None = None
    lines: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 100
    poll: bool = False
    flush_timeout: Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)] = 5.0
    max_line_bytes: Annotated[int, msgspec.Meta(ge=256, le=16 * 1024 * 1024)] = 65536
    allowed_dirs: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.channel is not None:
            validate_channel(self.channel)
        directory, pattern = os.path.split(self.path)
        if not pattern or has_magic(directory):
            raise PayloadError("path", f"{self.path!r}: a file path, or a glob in its file name")
        for allowed in self.allowed_dirs:
            if not allowed or is_within(os.path.abspath(allowed), SYSTEM_DIRS):
                never = ", ".join(SYSTEM_DIRS)
                raise PayloadError("allowed_dirs", f"{allowed!r}: a directory outside {never}")

    @property
    def exact(self) -> bool:
        """True when ``path`` names one file (not a glob): it may then be a symlink to anywhere."""
        return not has_magic(os.path.basename(self.path))

    def directories(self) -> list[str]:
        """Where the files may really lie: the path's directory and ``allowed_dirs``."""
        directory = os.path.dirname(os.path.abspath(self.path))
        return [directory, *map(os.path.abspath, self.allowed_dirs)]


def channel_for(file_name: str) -> str:
    """``app.log`` -> ``log.app``: the file name up to its first dot, as a channel segment."""
    stem = _CHANNEL_JUNK.sub("-", file_name.split(".", 1)[0].lower()).strip("-_")[:96]
    return validate_channel(f"log.{stem or 'file'}")


def matches(pattern: str, file_name: str) -> bool:
    """Does ``file_name`` match the configured file name or glob (dot files only explicitly)?"""
    if file_name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(file_name, pattern)


def _split_path(config: LogTailConfig) -> tuple[str, str]:
    directory, pattern = os.path.split(os.path.abspath(config.path))
    return directory, pattern


def _channels(config: LogTailConfig) -> list[tuple[str, str]]:
    if config.channel is not None:
        return [(config.channel, "log")]
    directory, pattern = _split_path(config)
    if not has_magic(pattern):
        return [(channel_for(pattern), "log")]
    listed = [name for name in _list_directory(directory) if matches(pattern, name)]
    allowed = config.directories()
    names = [name for name in listed if _allowed_now(os.path.join(directory, name), allowed)]
    return [(channel, "log") for channel in sorted(set(map(channel_for, names)))]


@dataclass
class LogTailStats:
    """What one tailer has done, as plain numbers read by ``/metrics`` at scrape time.

    Attributes:
        lines: lines published.
        rotations: files rotated, by how: ``rename`` (the name now points to
            another file or to none), ``copytruncate`` (truncated, its copy found)
            or ``truncate`` (truncated, no copy found).
        refused: files refused by the access rule, by reason (one of
            :data:`app.sources.logtail.access.REASONS`), once per file and reason.
        lag_bytes: bytes written to the followed files (rotated ones still
            drained included) that have not been read yet, as of the last read.
        bytes_read: bytes read from the followed files since the start.
    """

    lines: int = 0
    rotations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROTATION_KINDS, 0))
    lag_bytes: int = 0
    bytes_read: int = 0
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def rotated(self, how: str) -> None:
        """Count one rotation of kind ``how`` (one of ``ROTATION_KINDS``)."""
        self.rotations[how] += 1


@dataclass
class FileTail:
    """One open file being followed: where we are in it and the line we are in."""

    name: str
    channel: str
    fd: int
    file_id: FileId
    position: int
    splitter: LineSplitter
    history: bytes = b""
    last_read_at: float = 0.0
    size: int = 0
    lineno: int | None = None
    head: bytes = b""
    published: int = 0
    static: bool = False

    @property
    def lag_bytes(self) -> int:
        """Bytes beyond our position at the last read (none once truncated below it)."""
        return max(0, self.size - self.position)

    def advance(self, data: bytes, now: float) -> list[tuple[RawLine, int]]:
        """Account for ``data`` read at our position; return the lines it completes.

        Each line comes with the offset just after its line end (its checkpoint).
        """
        start = self.position
        self.head = grow_head(self.head, start, data)
        self.position += len(data)
        self.history = keep_tail(self.history, data)
        self.last_read_at = now
        lines = self.splitter.feed(data)
        ends, at = [], -1
        for _line in lines:
            at = data.find(b"\n", at + 1)
            ends.append(start + at + 1)
        return list(zip(lines, ends, strict=True))

    def mark(self) -> FileMark:
        """Our identity and the offset after the last line we published."""
        device, inode = self.file_id.device, self.file_id.inode
        head = self.head
        return FileMark(device, inode, fingerprint(head), len(head), self.published, self.lineno)

    def restart_at_zero(self) -> None:
        """The file was truncated: what comes next starts at its first byte."""
        self.position = 0
        self.history = b""
        self.head = b""
        self.published = 0
        self.lineno = 1


class _Halt(asyncio.Event):
    """Stops the watcher when ``stop`` is set, without the watcher ever setting ``stop``."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self._stop = stop

    def is_set(self) -> bool:
        return super().is_set() or self._stop.is_set()


@dataclass
class LogTailSource:
    """Follows the files of one ``logtail`` config.

    ``ready`` is set once the files present at start are known and watched (or
    their directory is known to be missing); ``stats`` counts what it did.
    """

    config: LogTailConfig
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stats: LogTailStats = field(default_factory=LogTailStats)
    _tails: dict[str, FileTail] = field(default_factory=dict)
    _draining: list[FileTail] = field(default_factory=list)
    _unreadable: set[str] = field(default_factory=set)
    _refused: dict[str, str] = field(default_factory=dict)
    _marks: dict[str, list[FileMark]] = field(default_factory=dict)
    _from_start: set[str] = field(default_factory=set)
    _drops: dict[str, str | None] = field(default_factory=dict)
    _checkpointed: set[str] = field(default_factory=set)
    _save_state: SaveState | None = None

    def __post_init__(self) -> None:
        self._directory, self._pattern = _split_path(self.config)
        self._allowed = None if self.config.exact else self.config.directories()
        self._publish: Publish = _not_running
        self._stop = asyncio.Event()
        self._last_full_scan = 0.0
        self._tick_ms = POLL_DELAY_MS if self.config.poll else TICK_MS

    def restore(self, state: dict[str, str]) -> None:
        """Take the stored checkpoints of our files (called before :meth:`run`)."""
        for key, value in state.items():
            directory, name = os.path.split(key.removeprefix(KEY_PREFIX))
            if directory != self._directory or not self._follows(name):
                continue
            marks = decode_marks(value)
            if marks is None:
                log.warning("logtail: ignoring an unreadable checkpoint for %s", self._path(name))
                continue
            self._marks[name] = marks

    def use_save_state(self, save_state: SaveState) -> None:
        """Store a file's mark when it is opened, before it has a line to publish."""
        self._save_state = save_state

    def _follows(self, name: str) -> bool:
        if has_magic(self._pattern):
            return matches(self._pattern, name)
        return name == self._pattern

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """Follow the files until ``stop`` is set."""
        self._publish, self._stop = publish, stop
        try:
            if await self._wait_for_directory():
                await self._resume()
                await self._scan(None, initial=True)
                await self._watch()
        finally:
            self._close_all()

    async def _resume(self) -> None:
        """Open each checkpointed file where its last published line ended.

        Files rotated away while we were down are drained first; a name whose
        file is not the checkpointed one is read from byte 0 (it may hold only
        lines written while we were down); a checkpoint whose files are all
        gone is dropped with the next line published.
        """
        marks, self._marks = self._marks, {}
        for name, stored in sorted(marks.items()):
            allowed = self._allowed or self.config.directories()
            at_name, others = await asyncio.to_thread(
                _candidates, self._directory, name, stored, self._allowed, allowed
            )
            fds = {(c.device, c.inode): fd for c, fd in [*others, *([at_name] if at_name else [])]}
            plan = resume_plan(stored, at_name[0] if at_name else None, [c for c, _ in others])
            try:
                for resume in plan.rotated:
                    self._draining.append(await self._resumed(name, resume, fds))
                if plan.current is not None:
                    self._tails[name] = await self._resumed(name, plan.current, fds)
            finally:
                for fd in fds.values():
                    os.close(fd)
            if plan.current is None:
                self._from_start.add(name)
            else:
                self._checkpointed.add(name)
            if at_name is None and not plan.rotated:
                self._drops[state_key(self._path(name))] = None
            self.stats.rotations["rename"] += plan.renamed
            self.stats.rotations["copytruncate"] += plan.copied
            if plan.lost:
                path, lost = self._path(name), plan.lost
                log.warning("logtail: %s: %d file(s) rotated away are gone", path, lost)

    async def _resumed(
        self, name: str, resume: Resume, fds: dict[tuple[int, int], int]
    ) -> FileTail:
        """A tail on ``resume``'s file at its mark (the fd is taken out of ``fds``)."""
        found, mark = resume.candidate, resume.mark
        fd = fds.pop((found.device, found.inode))
        history = await asyncio.to_thread(_bytes_before, fd, mark.offset)
        channel = self.config.channel or channel_for(name)
        splitter = LineSplitter(self.config.max_line_bytes)
        file_id = FileId(found.device, found.inode)
        tail = FileTail(name, channel, fd, file_id, mark.offset, splitter, history, self._now())
        tail.size, tail.lineno, tail.head = found.size, mark.lineno, found.head
        tail.published = mark.offset
        tail.static = (found.device, found.inode) != (mark.device, mark.inode)  # a copy
        path = self._path(name)
        log.info("logtail: %s continues at byte %d of %s", path, mark.offset, found.name)
        return tail

    async def _wait_for_directory(self) -> bool:
        while not await asyncio.to_thread(os.path.isdir, self._directory):
            self.ready.set()  # nothing to backfill: whatever appears is read from its start
            await pause_unless_stopped(self._stop, TICK_MS / 1000)
        return not self._stop.is_set()

    async def _watch(self) -> None:
        changes = awatch(
            self._directory,
            watch_filter=None,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=_Halt(self._stop),
            rust_timeout=self._tick_ms,
            yield_on_timeout=True,
            force_polling=self.config.poll,
            poll_delay_ms=POLL_DELAY_MS,
            recursive=False,
        )
        async with contextlib.aclosing(changes):
            async for batch in changes:
                changed = {os.path.basename(path) for _change, path in batch}
                await self._scan(changed or None)
                self.ready.set()

    async def _scan(self, changed: set[str] | None, *, initial: bool = False) -> None:
        """Look at the files: those named in ``changed``, or all of them once per tick."""
        if changed is None or self._now() - self._last_full_scan >= self._tick_ms / 1000:
            changed = None
            self._last_full_scan = self._now()
        for tail in list(self._draining):
            await self._drain(tail)
        for name in await self._names_to_check(changed):
            if self._stop.is_set():
                return
            await self._follow(name, backfill=initial)
        self._measure_lag()

    async def _names_to_check(self, changed: set[str] | None) -> list[str]:
        if not has_magic(self._pattern):  # other files' events in the directory: not ours
            return [self._pattern] if changed is None or self._pattern in changed else []
        if changed is None:
            listed = await asyncio.to_thread(_list_directory, self._directory)
            found = sorted(name for name in listed if matches(self._pattern, name))
            return list(dict.fromkeys([*self._tails, *found]))
        return sorted(name for name in changed if matches(self._pattern, name))

    async def _follow(self, name: str, *, backfill: bool) -> None:
        tail = self._tails.get(name)
        if tail is None:
            tail = await self._open(name, backfill=backfill and name not in self._from_start)
            if tail is None:
                return
            self._tails[name] = tail
            await self._save_mark(tail)
        at_path = await asyncio.to_thread(_file_id, self._path(name))
        if not await self._read_to_end(tail):
            await self._recover_truncated(tail)
            await self._read_to_end(tail)
        state = path_state(tail.file_id, at_path)
        if state is PathState.SAME:
            await self._flush_if_idle(tail)
            return
        del self._tails[name]
        self._draining.append(tail)
        self.stats.rotated("rename")
        if state is PathState.REPLACED:
            await self._follow(name, backfill=False)

    async def _drain(self, tail: FileTail) -> None:
        intact = await self._read_to_end(tail)
        idle = self._now() - tail.last_read_at >= self.config.flush_timeout
        if not intact or idle or tail.static:
            await self._flush(tail)
            self._draining.remove(tail)
            os.close(tail.fd)

    async def _open(self, name: str, *, backfill: bool) -> FileTail | None:
        path = self._path(name)
        try:
            lines = self.config.lines if backfill else None
            opened = await asyncio.to_thread(
                _open_at_start, path, self._allowed, lines, self.config.max_line_bytes
            )
        except PermissionError as error:
            if name not in self._unreadable:
                log.warning("logtail: cannot read %s: %s", path, error)
                self._unreadable.add(name)
            return None
        if isinstance(opened, str):
            self._refuse(name, opened)
            return None
        if opened is None:
            return None
        self._refused.pop(name, None)
        fd, file_id, position, history, head = opened
        channel = self.config.channel or channel_for(name)
        splitter = LineSplitter(self.config.max_line_bytes)
        tail = FileTail(name, channel, fd, file_id, position, splitter, history, self._now())
        tail.head, tail.published = head, position
        tail.lineno = await asyncio.to_thread(_first_lineno, fd, position)
        return tail

    def _refuse(self, name: str, reason: str) -> None:
        """Log and count a refused file once (not at every tick while it stays refused)."""
        if self._refused.get(name) == reason:
            return
        self._refused[name] = reason
        self.stats.refused[reason] += 1
        log.warning("logtail: not reading %s: %s", self._path(name), reason.replace("_", " "))

    async def _read_to_end(self, tail: FileTail) -> bool:
        """Publish the lines of what was appended; False when the file was truncated."""
        while not self._stop.is_set():
            before, lag_before = tail.history[-CHECK_BYTES:], tail.lag_bytes
            data, tail.size = await asyncio.to_thread(_read_after, tail.fd, tail.position, before)
            if data is None:
                return False
            if data and tail is self._tails.get(tail.name):
                await self._catch_up_rotated(tail.name)
            lines = tail.advance(data, self._now()) if data else []
            self.stats.bytes_read += len(data)
            self.stats.lag_bytes += tail.lag_bytes - lag_before
            for line, end in lines:
                await self._emit(tail, line, end)
            if len(data) < READ_CHUNK_BYTES:
                break
        return True

    async def _catch_up_rotated(self, name: str) -> None:
        """Publish what was appended to ``name``'s rotated-away files before its new bytes.

        Their reads come after the new file's read, so whatever a writer put in
        the old file before it wrote the new bytes is published first.
        """
        for old in [tail for tail in self._draining if tail.name == name]:
            await self._read_to_end(old)

    async def _recover_truncated(self, tail: FileTail) -> None:
        """Publish what the rotated copy holds beyond our position, then restart at byte 0."""
        allowed = self._allowed or self.config.directories()
        copy = await asyncio.to_thread(_find_copy, self._directory, allowed, tail)
        self.stats.rotated("truncate" if copy is None else "copytruncate")
        if copy is not None:
            fd, size = copy
            try:
                while tail.position < size and not self._stop.is_set():
                    want = min(READ_CHUNK_BYTES, size - tail.position)
                    data = await asyncio.to_thread(os.pread, fd, want, tail.position)
                    if not data:
                        break
                    for line, end in tail.advance(data, self._now()):
                        await self._emit(tail, line, end)
            finally:
                os.close(fd)
        await self._flush(tail)
        tail.restart_at_zero()

    async def _flush_if_idle(self, tail: FileTail) -> None:
        if self._now() - tail.last_read_at >= self.config.flush_timeout:
            await self._flush(tail)

    async def _flush(self, tail: FileTail) -> None:
        line = tail.splitter.flush()
        if line is not None:
            await self._emit(tail, line, tail.position, whole=False)

    async def _emit(self, tail: FileTail, raw: RawLine, end: int, *, whole: bool = True) -> None:
        """Publish one line with the checkpoint of its name (``end``: the offset after it)."""
        text = line_text(raw)
        facts = line_facts(text, time.time())
        data: dict[str, Any] = {"line": text, "file": tail.name, "level": facts.level}
        data.update(ts=facts.ts, lineno=tail.lineno)
        tail.published = end
        if whole and tail.lineno is not None:
            tail.lineno += 1
        await self._publish(tail.channel, "log", data, self._checkpoint(tail))
        self.stats.lines += 1

    async def _save_mark(self, tail: FileTail) -> None:
        """Store the mark of a file just opened under a name that has no checkpoint yet."""
        if self._save_state is not None and tail.name not in self._checkpointed:
            await self._save_state(self._checkpoint(tail))

    def _checkpoint(self, tail: FileTail) -> State:
        """The state stored with a line of ``tail``: the marks of every file of its name."""
        tails = [each for each in self._draining if each.name == tail.name]
        current = self._tails.get(tail.name)
        tails += [current] if current is not None else []
        tails += [] if tail in tails else [tail]
        state, self._drops = self._drops, {}
        state[state_key(self._path(tail.name))] = encode_marks([each.mark() for each in tails])
        self._checkpointed.add(tail.name)
        return state

    def _path(self, name: str) -> str:
        return os.path.join(self._directory, name)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _measure_lag(self) -> None:
        """Sum every file's lag again (each read only adds its own change)."""
        tails = [*self._tails.values(), *self._draining]
        self.stats.lag_bytes = sum(tail.lag_bytes for tail in tails)

    def _close_all(self) -> None:
        for tail in [*self._tails.values(), *self._draining]:
            os.close(tail.fd)
        self._tails.clear()
        self._draining.clear()
        self.stats.lag_bytes = 0


async def _not_running(
    channel: str, kind: str, data: dict[str, Any], state: State | None = None
) -> Event:
    raise RuntimeError("LogTailSource.run() has not started")


# -- blocking file work, run in a thread -----------------------------------------


def _open_at_start(
    path: str, allowed_dirs: Sequence[str] | None, lines: int | None, max_line_bytes: int
) -> tuple[int, FileId, int, bytes, bytes] | str | None:
    """Open a file the access rule allows; start at its last ``lines`` lines, or byte 0 when None.

    Returns ``(fd, id, position, the bytes before it, the first bytes)``; the
    reason when the rule refuses it, None when it is gone.
    """
    opened = _open_allowed(path, allowed_dirs)
    if not isinstance(opened, tuple):
        return opened
    fd, status = opened
    size = status.st_size
    position = 0 if lines is None else _backfill_start(fd, size, lines, max_line_bytes)
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    return fd, FileId.of(status), position, _bytes_before(fd, position), head


def _bytes_before(fd: int, position: int) -> bytes:
    """The bytes before ``position`` that identify it (what ``FileTail.history`` holds)."""
    known = min(position, MATCH_BYTES)
    return os.pread(fd, known, position - known) if known else b""


def _candidates(
    directory: str,
    name: str,
    marks: Sequence[FileMark],
    allowed_at_name: Sequence[str] | None,
    allowed: Sequence[str],
) -> tuple[tuple[Candidate, int] | None, list[tuple[Candidate, int]]]:
    """Open the files that may continue ``marks``: the one at ``name``, and others.

    The others are the rotated copies by name (newest first) and any file with
    a mark's inode; each comes with its open fd.
    """
    inodes = {mark.inode for mark in marks}
    entries, same_inode = [], []
    with os.scandir(directory) as listing:
        for entry in listing:
            with contextlib.suppress(FileNotFoundError):
                if entry.name != name and entry.is_file():
                    entries.append((entry.name, entry.stat().st_mtime))
                    if entry.inode() in inodes:
                        same_inode.append(entry.name)
    names = dict.fromkeys([*rotated_names(name, entries)[:COPY_CANDIDATES], *same_inode])
    others = [_candidate(directory, each, allowed) for each in names]
    return _candidate(directory, name, allowed_at_name), [each for each in others if each]


def _candidate(
    directory: str, name: str, allowed_dirs: Sequence[str] | None
) -> tuple[Candidate, int] | None:
    """``name`` opened (if the access rule allows it) with what identifies it."""
    try:
        opened = _open_allowed(os.path.join(directory, name), allowed_dirs)
    except PermissionError:
        return None
    if not isinstance(opened, tuple):
        return None
    fd, status = opened
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    return Candidate(name, status.st_dev, status.st_ino, status.st_size, head), fd


def _open_allowed(
    path: str, allowed_dirs: Sequence[str] | None
) -> tuple[int, os.stat_result] | str | None:
    """``(fd, status)`` of ``path`` if :func:`refusal` allows it, else the reason (None: gone).

    The real path is checked before opening (a device or FIFO is never opened)
    and opened without following a last symlink; the file opened must be the
    one checked, else it is left for the next look.
    """
    checked = _check(path, allowed_dirs)
    if not isinstance(checked, tuple):
        return checked
    real, status = checked
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP):  # swapped meanwhile
            return None
        raise
    opened = os.fstat(fd)
    if FileId.of(opened) != FileId.of(status) or not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        return None
    return fd, opened


def _check(
    path: str, allowed_dirs: Sequence[str] | None
) -> tuple[str, os.stat_result] | str | None:
    """``(real path, status)`` if :func:`refusal` allows ``path``, else the reason (None: gone)."""
    try:
        status = os.stat(path)
        real = os.path.realpath(path)
    except FileNotFoundError:
        return None
    allowed = None if allowed_dirs is None else real_dirs(allowed_dirs)
    reason = refusal(real, status.st_mode, allowed)
    return (real, status) if reason is None else reason


def _backfill_start(fd: int, size: int, lines: int, max_line_bytes: int) -> int:
    """Offset of the last ``lines`` lines, reading backwards in growing blocks (bounded)."""
    limit = min(size, max(READ_CHUNK_BYTES, (lines + 1) * max_line_bytes), BACKFILL_MAX_BYTES)
    want = min(size, READ_CHUNK_BYTES)
    while True:
        block = os.pread(fd, want, size - want)
        offset = backfill_offset(block, size - want, lines)
        if offset is not None:
            return offset
        if want >= limit:
            first_end = block.find(b"\n")
            return size if first_end < 0 else size - want + first_end + 1
        want = min(want * 4, limit)


def _allowed_now(path: str, allowed_dirs: Sequence[str]) -> bool:
    """May ``path`` be read (for the panels known at start; a file may go, or become readable)?"""
    with contextlib.suppress(PermissionError):
        return isinstance(_check(path, allowed_dirs), tuple)
    return True


def _first_lineno(fd: int, position: int) -> int | None:
    """The number of the line that starts at ``position``: counted up to a bound, else None."""
    if position > LINE_COUNT_MAX_BYTES:
        return None
    lines, offset = 1, 0
    while offset < position:
        chunk = os.pread(fd, min(READ_CHUNK_BYTES, position - offset), offset)
        if not chunk:
            return None
        lines, offset = lines + chunk.count(b"\n"), offset + len(chunk)
    return lines


def _list_directory(directory: str) -> list[str]:
    """The names in ``directory``; none while it does not exist (it may come back)."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _file_id(path: str) -> FileId | None:
    try:
        return FileId.of(os.stat(path))
    except FileNotFoundError:
        return None


def _read_after(fd: int, position: int, before: bytes) -> tuple[bytes | None, int]:
    """A chunk at ``position`` (None when ``before`` no longer precedes it), and the size after."""
    data = os.pread(fd, len(before) + READ_CHUNK_BYTES, position - len(before))
    return after_check(before, data), os.fstat(fd).st_size


def _find_copy(
    directory: str, allowed_dirs: Sequence[str], tail: FileTail
) -> tuple[int, int] | None:
    """The rotated copy holding the bytes we read last: ``(open fd, size)``, or None."""
    entries = []
    with os.scandir(directory) as listing:
        for entry in listing:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file():
                    entries.append((entry.name, entry.stat().st_mtime))
    for name in rotated_names(tail.name, entries)[:COPY_CANDIDATES]:
        found = _open_if_copy(os.path.join(directory, name), allowed_dirs, tail)
        if found is not None:
            return found
    return None


def _open_if_copy(path: str, allowed_dirs: Sequence[str], tail: FileTail) -> tuple[int, int] | None:
    try:
        opened = _open_allowed(path, allowed_dirs)
    except PermissionError:
        return None
    if not isinstance(opened, tuple):
        return None
    fd, size = opened[0], opened[1].st_size
    window = match_window(tail.position, len(tail.history), size)
    if window is not None:
        start, end = window
        if copy_matches(tail.history, tail.position, start, os.pread(fd, end - start, start)):
            return fd, size
    os.close(fd)
    return None


LOGTAIL = SourceType(
    name="logtail",
    config=LogTailConfig,
    create=LogTailSource,
    channels=_channels,
    description="tail -F of a path or glob: one log event per line",
    checkpoints=True,
)
