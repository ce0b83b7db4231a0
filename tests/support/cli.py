"""The ``pulseboard`` command run as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.server import ROOT


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
