"""Telling what happened to a followed log file, from stat results and the bytes already read.

Pure code, no I/O: the tailer gathers ``(device, inode, size, position)``
figures and a few bytes, and these functions decide.

Deliberate oddities (do not "fix"):
- Truncation is detected on every read, which starts a few bytes before our
  position: when those bytes are no longer the ones we read there, the file
  was truncated, even if it was refilled past our position before we looked.
- copytruncate: logrotate copies the file, then truncates it. The lines we had
  not read yet are only in the copy, so the copy is found beside the file by
  name (``app.log.1``, ``app.log-20240101``) and confirmed by comparing the
  bytes we read last with the copy's bytes at the same offsets. Compressed
  copies are not searched; a copy compressed before we looked loses its tail,
  as with plain ``tail -F``. A file copytruncated before we read a single byte
  of it cannot be matched (nothing to compare); in practice we read a file
  within milliseconds of its first write.
- Lines written between logrotate's copy and its truncate are in neither file;
  we deliver them only if we had read them before the truncate (usually not:
  logrotate fsyncs the copy in between). That loss is logrotate's, documented
  in its man page.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass

MATCH_BYTES = 4096
"""How many bytes before our position identify a file's content (and its copy)."""

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".z", ".zip")


@dataclass(frozen=True, slots=True)
class FileId:
    """Which file a name points to: device and inode."""

    device: int
    inode: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileId:
        """The id of a stat result."""
        return cls(status.st_dev, status.st_ino)


class PathState(enum.Enum):
    """What the followed name points to now, compared with the file we hold open."""

    SAME = "same"
    REPLACED = "replaced"
    MISSING = "missing"


def path_state(held: FileId, at_path: FileId | None) -> PathState:
    """Has the name been rotated away (rename, delete and re-create) from the file we hold?"""
    if at_path is None:
        return PathState.MISSING
    return PathState.SAME if at_path == held else PathState.REPLACED


def after_check(read_before: bytes, data: bytes) -> bytes | None:
    """The new bytes of a read that began ``len(read_before)`` bytes before our position.

    Returns None when the file no longer holds, before our position, the bytes we
    read there: it was truncated (or copytruncated), perhaps refilled past us.

    >>> after_check(b"ab", b"abcd"), after_check(b"ab", b"xbcd"), after_check(b"ab", b"a")
    (b'cd', None, None)
    """
    if data[: len(read_before)] != read_before:  # also when data is the shorter
        return None
    return data[len(read_before) :]


def rotated_names(name: str, entries: Iterable[tuple[str, float]]) -> list[str]:
    """Names that may be rotated copies of ``name`` (``app.log.1``), newest first.

    ``entries`` are ``(file name, mtime)`` pairs of the directory.

    >>> rotated_names("app.log", [("app.log.2", 1.0), ("app.log.1", 2.0), ("app.log.3.gz", 3.0)])
    ['app.log.1', 'app.log.2']
    """
    found = [
        (mtime, entry)
        for entry, mtime in entries
        if len(entry) > len(name)
        and entry.startswith(name)
        and entry[len(name)] in ".-_"
        and not entry.lower().endswith(_COMPRESSED)
    ]
    return [entry for _mtime, entry in sorted(found, reverse=True)]


def match_window(position: int, known: int, copy_size: int) -> tuple[int, int] | None:
    """The byte range of a candidate copy to compare with the ``known`` bytes we read last.

    Returns ``(start, end)``, or None when there is nothing to compare (we had
    read nothing, or the candidate is empty).

    >>> match_window(position=10_000, known=4096, copy_size=12_000)
    (5904, 10000)
    """
    end = min(position, copy_size)
    start = max(end - MATCH_BYTES, position - known, 0)
    return (start, end) if start < end else None


def copy_matches(read_before: bytes, position: int, start: int, copy_bytes: bytes) -> bool:
    """Are ``copy_bytes`` (read from a candidate at ``start``) the bytes we read there?

    ``read_before`` are the last bytes we read, ending at ``position``.
    """
    offset = len(read_before) - (position - start)
    return offset >= 0 and read_before[offset : offset + len(copy_bytes)] == copy_bytes


def keep_tail(history: bytes, more: bytes) -> bytes:
    """The last :data:`MATCH_BYTES` of ``history + more`` (what identifies our position)."""
    if len(more) >= MATCH_BYTES:
        return more[-MATCH_BYTES:]
    return (history + more)[-MATCH_BYTES:]
