"""Which files a logtail source may read: the rule, apart from the reading.

A directory tailed as ``*.log`` is often writable by people who must not read
``/etc/shadow`` through the dashboard: a symlink ``shadow.log -> /etc/shadow``
or ``environ.log -> /proc/self/environ`` would publish it line by line. So a
file is read only when:

- it is a regular file (FIFOs, sockets and devices are never opened: opening
  some devices has effects, and a FIFO would block);
- its real path is not under ``/proc``, ``/sys`` or ``/dev`` (their "regular"
  files are the kernel's and the process's secrets), even when named exactly;
- its real path lies inside the source's allowed directories, unless the
  config names the path exactly (not a glob): then it may be a symlink to
  anywhere, since the operator chose that very file.

Deliberate oddities (do not "fix"):
- A hard link inside an allowed directory is that directory's file: a hard
  link to another user's file needs ``fs.protected_hardlinks = 0``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

SYSTEM_DIRS = ("/proc", "/sys", "/dev")
"""Never read, whatever the config says."""

OUTSIDE = "outside_allowed_dirs"
SYSTEM = "system_path"
NOT_REGULAR = "not_regular_file"
REASONS = (OUTSIDE, SYSTEM, NOT_REGULAR)
"""Why a file is refused: the ``reason`` label of ``pulseboard_logtail_refused_total``."""


def refusal(real_path: str, mode: int, allowed_dirs: Sequence[str] | None) -> str | None:
    """Why the file at ``real_path`` (with ``st_mode`` ``mode``) may not be read, or None.

    ``allowed_dirs`` are real, absolute directory paths; None when the config
    names this path exactly (anywhere but the system directories is fine).

    >>> refusal("/var/log/pods/a.log", stat.S_IFREG, ["/var/log"])
    >>> refusal("/etc/shadow", stat.S_IFREG, ["/var/log"])
    'outside_allowed_dirs'
    >>> refusal("/etc/shadow", stat.S_IFREG, None)
    >>> refusal("/proc/1/environ", stat.S_IFREG, None), refusal("/tmp/p", stat.S_IFIFO, None)
    ('system_path', 'not_regular_file')
    """
    if is_within(real_path, SYSTEM_DIRS):
        return SYSTEM
    if not stat.S_ISREG(mode):
        return NOT_REGULAR
    if allowed_dirs is not None and not is_within(real_path, allowed_dirs):
        return OUTSIDE
    return None


def is_within(path: str, directories: Sequence[str]) -> bool:
    """Is the absolute, normalised ``path`` one of ``directories`` or below one of them?

    >>> is_within("/var/log/a", ["/var/log"]), is_within("/var/logs/a", ["/var/log"])
    (True, False)
    >>> is_within("/etc/x", ["/"])
    True
    """
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in directories)


def real_dirs(directories: Sequence[str]) -> list[str]:
    """The real paths of ``directories`` (resolved now: a directory may become a symlink)."""
    return [os.path.realpath(directory) for directory in directories]
