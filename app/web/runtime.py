"""Access to the current app's :class:`~app.serve.runtime.Runtime` from a request."""

from __future__ import annotations

from typing import cast

from quart import current_app

from app.serve.runtime import Runtime

EXTENSION = "pulseboard"


def current_runtime() -> Runtime:
    """The Runtime of the app serving this request."""
    return cast(Runtime, current_app.extensions[EXTENSION])
