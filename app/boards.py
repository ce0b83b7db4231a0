"""Boards: which channels a dashboard page shows, in what order and how big.

A board lists channel names and patterns (``ops.*``); a channel created later
that matches a pattern joins the board. A board with no ``channels`` (and the
default board, when the config has no ``[[boards]]``) shows every channel the
viewer may read. Pure functions: the page route gathers the channels, these
decide the tiles.

Deliberate oddities:
- On the default board a log panel spans two columns: log lines are long, and
  a log tile a third of the screen wide wraps or hides most of each line.
- ``signature`` is what the page's watcher sends back every few seconds: the
  server answers "no change" (204) while the board's channel list hashes the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from app.auth import Grant
from app.events import pattern_matches
from app.settings import BoardSettings

DEFAULT_BOARD = "all"
DEFAULT_TITLE = "Dashboard"
WIDE_KINDS = frozenset({"log"})


@dataclass(frozen=True)
class Board:
    """One board from ``[[boards]]`` (or the default board)."""

    name: str
    title: str
    channels: tuple[str, ...] = ()
    span: dict[str, tuple[int, int]] = field(default_factory=dict)
    columns: int = 3


@dataclass(frozen=True)
class Tile:
    """A channel placed on a board: its panel's kind and title, and its grid span."""

    channel: str
    kind: str
    title: str
    columns: int = 1
    rows: int = 1


def boards_from_settings(boards: list[BoardSettings]) -> list[Board]:
    """The configured boards in order, or the one default board showing everything."""
    if not boards:
        return [Board(DEFAULT_BOARD, DEFAULT_TITLE)]
    return [
        Board(b.name, b.title or b.name, tuple(b.channels), dict(b.span), b.columns) for b in boards
    ]


def board_readable(board: Board, grant: Grant) -> bool:
    """True when ``grant`` may read some channel the board can show (now or once created)."""
    if grant.read == ():
        return False
    return not board.channels or any(grant.can_read_some(entry) for entry in board.channels)


def place(board: Board, channels: list[tuple[str, str, str]]) -> list[Tile]:
    """The tiles of ``board`` from ``(channel, kind, title)`` candidates, in board order.

    Channels come in the board's order of names and patterns (a pattern's
    channels sorted by name); each channel once; candidates no entry matches are left out.

    >>> board = Board("ops", "Ops", ("log.*", "ticker"), {"log.*": (2, 2)})
    >>> [(t.channel, t.columns) for t in place(board, [("ticker", "ticker", "T"),
    ...     ("log.b", "log", "B"), ("log.a", "log", "A"), ("chat", "chat", "C")])]
    [('log.a', 2), ('log.b', 2), ('ticker', 1)]
    """
    if not board.channels:
        return [_tile(board, *candidate) for candidate in channels]
    tiles: dict[str, Tile] = {}
    for entry in board.channels:
        for candidate in sorted(channels) if "*" in entry else channels:
            if candidate[0] not in tiles and pattern_matches(entry, candidate[0]):
                tiles[candidate[0]] = _tile(board, *candidate)
    return list(tiles.values())


def _tile(board: Board, channel: str, kind: str, title: str) -> Tile:
    columns, rows = span_of(board, channel, kind)
    return Tile(channel, kind, title, columns, rows)


def span_of(board: Board, channel: str, kind: str) -> tuple[int, int]:
    """The channel's ``span``: its own key first, then the first matching pattern key."""
    if channel in board.span:
        return board.span[channel]
    for key, span in board.span.items():
        if pattern_matches(key, channel):
            return span
    if not board.span and kind in WIDE_KINDS and board.columns > 1:
        return (2, 1)
    return (1, 1)


def signature(tiles: list[Tile]) -> str:
    """A short hash of the tiles' channels and kinds: changes when a panel comes or goes."""
    text = "\n".join(f"{tile.channel} {tile.kind}" for tile in tiles)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
