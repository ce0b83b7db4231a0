"""notify: a channel of notifications that scripts, webhooks and alerts post to.

Like chat, the source only declares its channel; the HTTP API and the alert
engine publish to it.
"""

from __future__ import annotations

from app.sources.base import SourceType
from app.sources.chat import DeclaredChannel, RoomConfig


def _channels(config: RoomConfig) -> list[tuple[str, str]]:
    return [(config.channel, "notify")]


NOTIFY = SourceType(
    name="notify",
    config=RoomConfig,
    create=DeclaredChannel,
    channels=_channels,
    description="a notification channel that scripts post to (curl -d 'backup done' ...)",
)
