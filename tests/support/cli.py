"""The ``pulseboard`` command run as a user would, in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import IO

from tests.support.server import ROOT
from tests.support.waiting import wait_until


def pulseboard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` from the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


class RunningCommand:
    """``python -m app ARGS`` left running; its output lines collected by reader threads."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            preexec_fn=_interruptible,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    def wait_for_lines(self, count: int, within_s: float = 20.0) -> list[str]:
        """The first ``count`` stdout lines, once printed; fails naming what came instead."""
        try:
            wait_until(lambda: len(self.stdout) >= count, f"{count} lines printed", within_s)
        except AssertionError:
            raise AssertionError(f"stdout: {self.stdout}\nstderr: {self.stderr}") from None
        return self.stdout[:count]

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        """Send ``sig`` and return the exit status (killed if it does not exit in time)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            for reader in self._readers:
                reader.join(timeout_s)
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe is not None:
                    pipe.close()


def _interruptible() -> None:
    """Ctrl-C as at a terminal: a suite started in the background (``make test &``, a CI
    runner) passes SIGINT on ignored, and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))
