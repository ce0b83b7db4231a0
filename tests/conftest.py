"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(path: str, why: str) -> str:
    """Skip (locally) or fail (CI=true) when a binary the test needs is missing."""
    if shutil.which(path) is None and not os.path.exists(path):
        message = f"{path} is missing: {why}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
