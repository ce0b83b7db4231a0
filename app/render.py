"""Events to HTML fragments for the ``format=html`` stream: one Jinja partial per kind.

Every partial lives in ``templates/partials/_<kind>.html`` and is rendered
with autoescaping on; kinds without a partial of their own use
``_default.html``. A partial is called in one of two modes:

- ``mode == "event"``: one live or resumed event (``event``), appended to its
  panel or replacing a row by id;
- ``mode == "snapshot"``: the recent ``events`` of ``channel`` as one swap
  that *replaces* the panel's content (fresh connect, gap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from app.events import Event

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def dom_id(channel: str, *parts: object) -> str:
    """A DOM id for a channel's element: ``dom_id("log.app", 7)`` → ``log-app-7``."""
    base = channel.replace(".", "-")
    return "-".join([base, *(str(part) for part in parts)])


def create_environment(extra_paths: list[Path] | None = None) -> jinja2.Environment:
    """The Jinja environment for pages and partials (autoescape always on)."""
    loader = jinja2.FileSystemLoader([TEMPLATES, *(extra_paths or [])])
    env = jinja2.Environment(loader=loader, autoescape=True, enable_async=False)
    env.globals["dom_id"] = dom_id
    return env


class Renderer:
    """Renders events, snapshots, gaps and the connection status as HTML fragments."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self._partials: dict[str, jinja2.Template] = {}

    def event(self, event: Event, highlight: Any = None) -> str:
        """One event as its panel's row (``highlight``: a compiled pattern to mark)."""
        return self._partial(event.kind).render(
            mode="event", channel=event.channel, event=event, highlight=_highlighter(highlight)
        )

    def snapshot(self, channel: str, kind: str, events: list[Event]) -> str:
        """A channel's recent events as one swap that replaces the panel's content."""
        return self._partial(kind).render(
            mode="snapshot", channel=channel, events=events, highlight=_highlighter(None)
        )

    def gap(self, channels: list[str]) -> str:
        """The note shown when the server could not replay everything the client missed."""
        return self.env.get_template("partials/_gap.html").render(channels=channels)

    def status(self) -> str:
        """The connection-state fragment a stream refreshes on every heartbeat."""
        return self.env.get_template("partials/_status.html").render()

    def _partial(self, kind: str) -> jinja2.Template:
        template = self._partials.get(kind)
        if template is None:
            template = self.env.select_template([f"partials/_{kind}.html", "partials/_default.html"])
            self._partials[kind] = template
        return template


def _highlighter(pattern: Any) -> Any:
    """A template filter that escapes text and wraps matches of ``pattern`` in ``<mark>``."""

    def highlight(text: str) -> Markup:
        escaped = Markup.escape(text)
        if pattern is None:
            return escaped
        pieces: list[str] = []
        position = 0
        for match in pattern.finditer(text):
            if match.end() == match.start():
                continue
            pieces.append(Markup.escape(text[position : match.start()]))
            pieces.append(Markup("<mark>%s</mark>") % text[match.start() : match.end()])
            position = match.end()
        pieces.append(Markup.escape(text[position:]))
        return Markup("").join(pieces)

    return highlight

