"""Webhook bodies for alerts: what each chat or push service accepts, built from one set of facts.

``format = "json"`` posts the facts themselves; ``slack``, ``discord`` and
``ntfy`` post what that service's incoming webhook documents, within its
limits. Pure functions: the engine posts the result, tests validate it.

Deliberate oddities:
- Slack: ``&``, ``<`` and ``>`` in a log line are escaped (Slack reads
  ``<!channel>`` as a mention of everyone); a section's text stays under
  3,000 characters and the header under 150, after escaping.
- Discord: ``allowed_mentions`` is empty, so an ``@everyone`` in a log line
  pings nobody; content ≤ 2,000 characters, embed title ≤ 256, description
  ≤ 4,096, and the embed's text well under Discord's 6,000 in total.
- ntfy: JSON is published to the server's root URL with the topic in the
  body, so the rule's ``webhook`` is the topic URL (``https://ntfy.sh/ops``)
  and the POST goes to ``https://ntfy.sh/``. The message stays under ntfy's
  4,096 bytes (beyond which ntfy turns it into an attachment).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

WebhookFormat = Literal["json", "slack", "discord", "ntfy"]
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
DISCORD_CONTENT_MAX = 2000
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4000  # of Discord's 4,096, leaving room in the 6,000 total
DISCORD_FIELD_MAX = 256
NTFY_MESSAGE_BYTES = 4000  # of ntfy's 4,096
NTFY_PRIORITY = {"success": 2, "info": 3, "warning": 4, "error": 4, "critical": 5}
NTFY_TAGS = {"critical": "rotating_light", "error": "rotating_light", "warning": "warning"}
DISCORD_COLOURS = {
    "critical": 0x8B0000,
    "error": 0xD93025,
    "warning": 0xF29900,
    "success": 0x188038,
    "info": 0x1A73E8,
}
SLACK_EMOJI = {"critical": ":rotating_light:", "error": ":red_circle:", "warning": ":warning:"}
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")


def ntfy_target(url: str) -> tuple[str, str] | None:
    """``(root URL, topic)`` of an ntfy topic URL; None when its last segment is no topic.

    >>> ntfy_target("https://ntfy.sh/ops-alerts")
    ('https://ntfy.sh/', 'ops-alerts')
    """
    parts = urlsplit(url)
    root, _, topic = parts.path.rpartition("/")
    if not _NTFY_TOPIC.fullmatch(topic):
        return None
    return urlunsplit((parts.scheme, parts.netloc, root + "/", "", "")), topic


def webhook_request(fmt: WebhookFormat, url: str, facts: dict[str, Any]) -> tuple[str, Any]:
    """Where to POST and the JSON body, for an alert's ``facts`` (see ``alerts.alert_facts``)."""
    if fmt == "slack":
        return url, slack_body(facts)
    if fmt == "discord":
        return url, discord_body(facts)
    if fmt == "ntfy":
        target = ntfy_target(url)
        if target is None:
            raise ValueError(f"not an ntfy topic URL: {url!r}")
        return target[0], ntfy_body(target[1], facts)
    return url, facts


def slack_body(facts: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` plus header, line and context blocks."""
    title, line, level = facts["title"], facts["line"], facts["alert_level"]
    where = f"{facts['file'] or facts['channel']} on {facts['channel']}"
    context = f"{_slack_escape(where)} · <{facts['link']}|open the line>"
    code = "```" + _slack_fit(line.replace("```", "'''"), SLACK_TEXT_MAX - 6) + "```"
    if not line:
        code = "(empty line)"
    header = {"type": "plain_text", "text": _clip(title, SLACK_HEADER_MAX)}
    return {
        "text": _slack_fit(f"{SLACK_EMOJI.get(level, '')} {title}: {line}".strip(), SLACK_TEXT_MAX),
        "blocks": [
            {"type": "header", "text": header},
            {"type": "section", "text": {"type": "mrkdwn", "text": code}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def discord_body(facts: dict[str, Any]) -> dict[str, Any]:
    """A Discord execute-webhook body: the title as content and one embed with the line."""
    line = facts["line"].replace("```", "'''")
    embed = {
        "title": _clip(facts["title"], DISCORD_TITLE_MAX),
        "description": "```\n" + _clip(line, DISCORD_DESCRIPTION_MAX - 8) + "\n```",
        "url": facts["link"],
        "color": DISCORD_COLOURS.get(facts["alert_level"], DISCORD_COLOURS["error"]),
        "fields": [
            {"name": "File", "value": _clip(facts["file"] or "-", DISCORD_FIELD_MAX)},
            {"name": "Channel", "value": facts["channel"]},
        ],
        "timestamp": datetime.fromtimestamp(facts["time"], UTC).isoformat(),
        "footer": {"text": _clip(f"Pulseboard rule: {facts['rule']}", DISCORD_FIELD_MAX)},
    }
    return {
        "content": _clip(facts["title"], DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def ntfy_body(topic: str, facts: dict[str, Any]) -> dict[str, Any]:
    """An ntfy publish-as-JSON body for ``topic``: title, line, priority, tags, click link."""
    level = facts["alert_level"]
    where = facts["file"] or facts["channel"]
    message = _clip_bytes(f"{facts['line'] or '(empty line)'}\n{where}", NTFY_MESSAGE_BYTES)
    tags = [NTFY_TAGS[level]] if level in NTFY_TAGS else []
    return {
        "topic": topic,
        "title": facts["title"],
        "message": message,
        "priority": NTFY_PRIORITY.get(level, 3),
        "tags": [*tags, "pulseboard"],
        "click": facts["link"],
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_fit(text: str, limit: int) -> str:
    """``text`` escaped for Slack, cut (never inside an entity) to at most ``limit`` characters."""
    pieces: list[str] = []
    size = 0
    for char in text:
        piece = _slack_escape(char)
        if size + len(piece) > limit - 1:
            return "".join(pieces) + "…"
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)
