"""What a logtail checkpoint holds, and where a restart continues (issue 14.2).

Pure code, no I/O: the tailer opens the candidate files and reads their first
bytes; these functions decide which of them continue where.

A checkpoint is stored per followed name, under ``logtail:<absolute path>``,
with every line published from that name (in the same commit as the line).
Its value lists a :class:`FileMark` per file still followed under the name,
oldest first: the files rotated away and still drained, then the file at the
name. A mark is the file's identity (device, inode and a fingerprint of its
first bytes) and the offset after its last published line (a line published
by the flush timeout included), so it always describes exactly what was
published.

Deliberate oddities (do not "fix"):
- The fingerprint covers the first :data:`FINGERPRINT_BYTES` bytes known when
  the mark was written, and its length is stored: a file that was 10 bytes long
  is recognised by those 10 bytes.
- A file with the mark's device and inode but another fingerprint, or shorter
  than the offset, was truncated (copytruncate): its rest is looked for in a
  rotated copy (same fingerprint, at least as long as the offset).
- A mark whose file is found nowhere is forgotten: what was not read of it is
  lost, as with ``tail -F`` after a deleted file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

FINGERPRINT_BYTES = 1024
"""How many first bytes of a file identify it beside its device and inode."""

KEY_PREFIX = "logtail:"


class FileMark(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One file's identity and the offset after its last published line."""

    device: int
    inode: int
    fingerprint: str
    fingerprint_len: int
    offset: int
    lineno: int | None = None


_MARKS = msgspec.json.Decoder(list[FileMark])


def fingerprint(head: bytes) -> str:
    """The fingerprint of a file's first bytes (sha1, hex)."""
    return hashlib.sha1(head, usedforsecurity=False).hexdigest()


def state_key(path: str) -> str:
    """The state key of a followed absolute path."""
    return KEY_PREFIX + path


def encode_marks(marks: Sequence[FileMark]) -> str:
    """The stored value for a name's marks."""
    return msgspec.json.encode(list(marks)).decode()


def decode_marks(value: str) -> list[FileMark] | None:
    """The marks of a stored value; None when it is not one (then the name counts as new).

    >>> decode_marks('[{"device":1,"inode":2,"fingerprint":"x","fingerprint_len":0,"offset":3}]')
    [FileMark(device=1, inode=2, fingerprint='x', fingerprint_len=0, offset=3, lineno=None)]
    >>> decode_marks("not json") is None
    True
    """
    try:
        return _MARKS.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def grow_head(head: bytes, position: int, data: bytes) -> bytes:
    """``head`` (a file's first bytes) extended with ``data`` read at ``position``.

    Only bytes that follow ``head`` without a hole are added, up to
    :data:`FINGERPRINT_BYTES`.

    >>> grow_head(b"abc", 2, b"cdef"), grow_head(b"ab", 5, b"xyz")
    (b'abcdef', b'ab')
    """
    have = len(head)
    if have >= FINGERPRINT_BYTES or not position <= have < position + len(data):
        return head
    start = have - position
    return head + data[start : start + FINGERPRINT_BYTES - have]


@dataclass(frozen=True)
class Candidate:
    """A file that may continue a mark: where it is, who it is, its first bytes."""

    name: str
    device: int
    inode: int
    size: int
    head: bytes

    def same_content(self, mark: FileMark) -> bool:
        """Do our first bytes match the mark's fingerprint, and do we reach its offset?"""
        length = mark.fingerprint_len
        if len(self.head) < length or self.size < mark.offset:
            return False
        return fingerprint(self.head[:length]) == mark.fingerprint

    def is_file_of(self, mark: FileMark) -> bool:
        """Are we the mark's file (device, inode and content)?"""
        return (self.device, self.inode) == (mark.device, mark.inode) and self.same_content(mark)


@dataclass(frozen=True)
class Resume:
    """Continue ``candidate`` at the mark's offset and line number."""

    candidate: Candidate
    mark: FileMark


@dataclass(frozen=True)
class ResumePlan:
    """Where a followed name continues after a restart.

    Attributes:
        rotated: files rotated away while we were down (renamed, or the copy of
            a copytruncate), oldest first: read to their end before anything new.
        current: the file at the name continues at its mark; None when the name
            points to another file (or none): it is then read from byte 0.
        renamed: how many files were found under another name.
        copied: how many were truncated and continue in a rotated copy.
        lost: marks whose file is found nowhere.
    """

    rotated: list[Resume]
    current: Resume | None
    renamed: int = 0
    copied: int = 0
    lost: int = 0


def resume_plan(
    marks: Sequence[FileMark], at_name: Candidate | None, others: Sequence[Candidate]
) -> ResumePlan:
    """Match each mark with the file that continues it.

    ``at_name`` is the file the followed name points to now; ``others`` are the
    directory's other files that may be a mark's file renamed (same device and
    inode) or a rotated copy (newest first).
    """
    rotated: list[Resume] = []
    current: Resume | None = None
    used: set[tuple[int, int]] = set()
    renamed = copied = lost = 0
    for mark in marks:
        if at_name is not None and current is None and at_name.is_file_of(mark):
            current = Resume(at_name, mark)
            continue
        moved = next((c for c in others if c.is_file_of(mark)), None)
        if moved is not None and (moved.device, moved.inode) not in used:
            rotated.append(Resume(moved, mark))
            used.add((moved.device, moved.inode))
            renamed += 1
            continue
        copy = _copy_of(mark, at_name, others, used)
        if copy is not None:
            rotated.append(Resume(copy, mark))
            used.add((copy.device, copy.inode))
            copied += 1
            continue
        lost += 1
    return ResumePlan(rotated, current, renamed, copied, lost)


def _copy_of(
    mark: FileMark,
    at_name: Candidate | None,
    others: Sequence[Candidate],
    used: set[tuple[int, int]],
) -> Candidate | None:
    """The rotated copy holding the rest of a file truncated in place (copytruncate)."""
    if at_name is None or (at_name.device, at_name.inode) != (mark.device, mark.inode):
        return None
    for candidate in others:
        identity = (candidate.device, candidate.inode)
        fresh = identity != (mark.device, mark.inode) and identity not in used
        if fresh and candidate.same_content(mark):
            return candidate
    return None
