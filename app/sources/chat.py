"""chat: a room is a ``chat`` channel; people post to it through the HTTP API.

The source itself produces nothing: declaring it makes the room exist (a
panel on the dashboard, a channel that accepts posts) before anyone speaks.
"""

from __future__ import annotations

import asyncio

import msgspec

from app.events import validate_channel
from app.sources.base import Publish, SourceType


class RoomConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A declared channel: ``[[sources]] type = "chat"`` (or ``"notify"``) and its ``channel``."""

    type: str
    channel: str

    def __post_init__(self) -> None:
        validate_channel(self.channel)


class DeclaredChannel:
    """A source that runs nothing: its channel is filled by HTTP posts."""

    def __init__(self, config: RoomConfig) -> None:
        self.config = config

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """Wait for ``stop``."""
        await stop.wait()


def _channels(config: RoomConfig) -> list[tuple[str, str]]:
    return [(config.channel, "chat")]


CHAT = SourceType(
    name="chat",
    config=RoomConfig,
    create=DeclaredChannel,
    channels=_channels,
    description="a chat room: a chat channel that browsers and programs post to",
)
