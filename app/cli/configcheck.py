"""What ``check-config`` warns about: settings that are valid but probably not meant.

Errors (what would fail at run time) are raised where the settings are built;
this module only finds what runs but does nothing, such as a logtail path that
matches no file (yet: a file that appears later is followed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from glob import has_magic

from app.settings import Settings
from app.sources.base import ConfiguredSource
from app.sources.logtail.source import matches
from app.urls import is_loopback_bind, public_base_url


def config_warnings(sources: Sequence[ConfiguredSource]) -> list[str]:
    """One line per doubtful setting, naming its key.

    A logtail path in a directory that a ``demo-log`` source of the same config
    writes to is not doubtful: its files appear once the server runs.
    """
    written = {os.path.abspath(s.config.path) for s in sources if s.type.name == "demo-log"}
    return [
        f"sources[{source.index}].path: {source.config.path!r} matches no file"
        for source in sources
        if source.type.name == "logtail" and not _matches_a_file(source.config.path, written)
    ]


def alert_link_warnings(settings: Settings) -> list[str]:
    """Webhooks that would send links to a loopback address: set ``server.public_url``."""
    server = settings.server
    if server.public_url is not None:
        return []
    base = public_base_url(server.bind, None, server.host_names)
    if not is_loopback_bind(base.removeprefix("http://")):
        return []
    return [
        f"alerts[{index}].webhook: server.public_url is unset, so the links it sends point "
        f"to {base}, which only this machine reaches"
        for index, alert in enumerate(settings.alerts)
        if alert.webhook is not None
    ]


def _matches_a_file(path: str, written: set[str]) -> bool:
    directory, pattern = os.path.split(os.path.abspath(path))
    if directory in written:
        return True
    if not has_magic(pattern):
        return os.path.isfile(os.path.join(directory, pattern))
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    return any(matches(pattern, name) for name in names)
