"""What each service documents for the JSON its webhook accepts, as checks on a received body.

Each check asserts the documented shape (required fields, types, limits) and
returns what the body says: ``title``, ``line``, ``file`` and ``link``.

- Slack incoming webhooks (api.slack.com/messaging/webhooks, Block Kit
  reference): ``text`` is the fallback (Slack truncates beyond 40,000
  characters); at most 50 blocks; a header's ``plain_text`` at most 150
  characters; a section's or context element's text at most 3,000;
  ``&``, ``<``, ``>`` escaped outside ``<url|label>`` links.
- Discord execute webhook (discord.com/developers/docs/resources/webhook):
  ``content`` at most 2,000 characters; at most 10 embeds; embed ``title``
  256, ``description`` 4,096, at most 25 ``fields`` (name 256, value 1,024),
  ``footer.text`` 2,048, 6,000 characters of embed text in all; ``color`` an
  integer; ``timestamp`` ISO 8601.
- ntfy publish as JSON (docs.ntfy.sh/publish/#publish-as-json): POSTed to
  the root URL; ``topic`` required (``[-_A-Za-z0-9]{1,64}``); ``message``,
  ``title`` strings, ``tags`` a list of strings, ``priority`` 1-5, ``click``
  a URL; a message over 4,096 bytes is turned into an attachment.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

SLACK_LINK = re.compile(r"<(https?://[^|>]+)\|[^>]*>")


def escape_slack(text: str) -> str:
    """Text as Slack wants it inside mrkdwn: ``&``, ``<``, ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _is_url(text: Any) -> bool:
    parts = urlsplit(text) if isinstance(text, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def slack(body: Any) -> dict[str, str]:
    """Check a Slack incoming-webhook body."""
    assert isinstance(body, dict)
    assert set(body) <= {"text", "blocks", "attachments", "thread_ts", "mrkdwn"}
    assert isinstance(body["text"], str) and 0 < len(body["text"]) <= 40_000
    blocks = body["blocks"]
    assert isinstance(blocks, list) and 0 < len(blocks) <= 50
    texts: dict[str, list[str]] = {}
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
            texts.setdefault(kind, []).append(block["text"]["text"])
        elif kind == "section":
            assert block["text"]["type"] in ("mrkdwn", "plain_text")
            assert 0 < len(block["text"]["text"]) <= 3000
            texts.setdefault(kind, []).append(block["text"]["text"])
        else:
            assert kind == "context", kind
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                assert element["type"] in ("mrkdwn", "plain_text")
                assert 0 < len(element["text"]) <= 3000
                texts.setdefault(kind, []).append(element["text"])
    mrkdwn = [*texts.get("section", []), *texts.get("context", []), body["text"]]
    for text in mrkdwn:
        assert "<" not in SLACK_LINK.sub("", text), f"unescaped < in {text[:80]!r}"
    context = " ".join(texts.get("context", []))
    links = SLACK_LINK.findall(context)
    return {
        "title": texts["header"][0],
        "line": " ".join(texts.get("section", [])),
        "file": context,
        "link": links[0] if links else "",
    }


def discord(body: Any) -> dict[str, str]:
    """Check a Discord execute-webhook body."""
    assert isinstance(body, dict)
    assert "content" in body or "embeds" in body
    assert isinstance(body.get("content", ""), str) and len(body.get("content", "")) <= 2000
    embeds = body.get("embeds", [])
    assert isinstance(embeds, list) and len(embeds) <= 10
    assert body.get("allowed_mentions") == {"parse": []}, "a log line must ping nobody"
    total = 0
    for embed in embeds:
        assert len(embed.get("title", "")) <= 256
        assert len(embed.get("description", "")) <= 4096
        assert _is_url(embed.get("url", "https://x"))
        assert isinstance(embed.get("color", 0), int) and 0 <= embed.get("color", 0) <= 0xFFFFFF
        datetime.fromisoformat(embed["timestamp"])
        fields = embed.get("fields", [])
        assert len(fields) <= 25
        for item in fields:
            assert 0 < len(item["name"]) <= 256 and 0 < len(item["value"]) <= 1024
        footer = embed.get("footer", {}).get("text", "")
        assert len(footer) <= 2048
        total += len(embed.get("title", "")) + len(embed.get("description", "")) + len(footer)
        total += sum(len(item["name"]) + len(item["value"]) for item in fields)
    assert total <= 6000
    [embed] = embeds
    files = [item["value"] for item in embed["fields"] if item["name"] == "File"]
    return {
        "title": embed["title"],
        "line": embed["description"],
        "file": files[0],
        "link": embed["url"],
    }


def ntfy(body: Any) -> dict[str, str]:
    """Check an ntfy publish-as-JSON body."""
    assert isinstance(body, dict)
    allowed = {"topic", "message", "title", "tags", "priority", "click", "actions", "markdown"}
    assert set(body) <= allowed | {"attach", "filename", "icon", "delay", "email", "call"}
    assert re.fullmatch(r"[-_A-Za-z0-9]{1,64}", body["topic"])
    assert isinstance(body["message"], str) and len(body["message"].encode()) <= 4096
    assert isinstance(body.get("title", ""), str)
    assert all(isinstance(tag, str) for tag in body.get("tags", []))
    assert body.get("priority", 3) in (1, 2, 3, 4, 5)
    assert _is_url(body["click"])
    return {
        "title": body["title"],
        "line": body["message"],
        "file": body["message"],
        "link": body["click"],
    }


def plain(body: Any) -> dict[str, str]:
    """Pulseboard's own ``json`` format: the facts, by name."""
    assert isinstance(body, dict)
    for name in ("rule", "title", "line", "file", "link", "channel", "id", "time", "key"):
        assert name in body, name
    return {"title": body["rule"], "line": body["line"], "file": body["file"], "link": body["link"]}


SHAPES = {"json": plain, "slack": slack, "discord": discord, "ntfy": ntfy}
