"""A publish body (and ntfy's headers) read into a payload: strict, forgiving, pure.

The ways in, each giving the same event (docs/notifications.md):

- a JSON object, whatever the content type says: ``curl -d '{"message": ...}'``
  sends ``application/x-www-form-urlencoded``;
- form fields that are the kind's fields (``tags`` may repeat); a field the
  kind does not have is a 400 naming it;
- anything else is the kind's ``form_field`` (a notify ``message``): a form
  body without any of the kind's fields, or ``text/plain``;
- ntfy's headers (``Title``, ``Priority``, ``Tags``, ``Click``, ``Message``,
  each also with ``X-``), or the same names as query parameters
  (``?title=...``, as ntfy takes them), fill the fields the body leaves out.
  Any other query parameter is a 400 naming it.

Deliberate oddities:
- A body "looks like JSON" when it starts with ``{`` and ends with ``}``;
  such a body that is not valid JSON is a 400, not a message: it was meant
  as JSON.
- A form piece without ``=`` is text, not a field: ``curl -d message``
  publishes the message "message".
- A ``Priority`` header in RFC 9218's form (``u=1, i``, sent by browsers) is
  HTTP's own, not ntfy's: it is ignored.
- ntfy headers that ask for what Pulseboard does not do (``Delay``,
  ``Email``, ``Call``, ``Attach``, ``Actions``...) are a 400 naming them:
  publishing at once, or without the e-mail, would silently do something
  else. Presentation hints (``Markdown``, ``Icon``, ``Cache``,
  ``Firebase``) are ignored: the message is stored as sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.datastructures import Headers

from app.events import Kind, PayloadError
from app.web.params import check_known, decode_json

FORM = "application/x-www-form-urlencoded"
LIST_FIELDS = frozenset({"tags"})
NTFY_HEADERS: dict[str, str] = {
    "title": "title",
    "priority": "priority",
    "tags": "tags",
    "click": "link",
    "message": "message",
}
NTFY_REFUSED = (
    "delay", "at", "in", "email", "call", "attach", "filename", "actions", "template", "poll-id"
)  # fmt: skip
_RFC9218_PRIORITY = re.compile(r"\s*(u=[0-7]|i)\s*(,\s*(u=[0-7]|i)\s*)*")


def body_payload(kind: Kind, mimetype: str, text: str, max_fields: int) -> dict[str, Any]:
    """The payload a body carries for ``kind`` (not yet validated against its schema)."""
    stripped = text.strip()
    if mimetype == "application/json" or (stripped.startswith("{") and stripped.endswith("}")):
        payload = decode_json(text, "body")
        if not isinstance(payload, dict):
            raise PayloadError("body", "a JSON object is required")
        return payload
    if mimetype == FORM:
        fields = form_fields(text, kind, max_fields)
        if fields is not None:
            return fields
    if kind.form_field is None:
        raise PayloadError("body", f"send the {kind.name} fields as JSON or form fields")
    return {kind.form_field: text} if stripped else {}


def form_fields(text: str, kind: Kind, max_fields: int) -> dict[str, Any] | None:
    """The fields of a form body, or None when it names none of the kind's fields (it is text).

    >>> from app.events import BUILTIN_KINDS
    >>> form_fields("message=x&tags=a&tags=b", BUILTIN_KINDS[3], 20)
    {'message': 'x', 'tags': ['a', 'b']}
    """
    pairs = [_pair(piece) for piece in text.split("&") if piece]
    known = set(kind.schema.__struct_fields__)
    if not any(name in known for name, value in pairs if value is not None):
        return None
    if len(pairs) > max_fields:
        raise PayloadError("body", f"too many form fields (at most {max_fields})")
    unknown = sorted({name for name, value in pairs if name not in known or value is None})
    if unknown:
        raise PayloadError(", ".join(unknown), f"unknown field for a {kind.name} event")
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in LIST_FIELDS:
            fields.setdefault(name, []).extend(_split_list(value or ""))
        elif name in fields:
            raise PayloadError(name, "given more than once")
        else:
            fields[name] = value
    return fields


def _pair(piece: str) -> tuple[str, str | None]:
    name, equals, value = piece.partition("=")
    return unquote_plus(name), unquote_plus(value) if equals else None


def _split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def header_fields(
    kind: Kind, headers: Headers, args: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """ntfy's headers (or query parameters) as fields of ``kind``; refused ones are a 400."""
    known = set(kind.schema.__struct_fields__)
    ntfy = "message" in known  # a notification channel; elsewhere ntfy's names mean nothing
    check_known(args or {}, frozenset([*NTFY_HEADERS, *NTFY_REFUSED]) if ntfy else frozenset())
    if not ntfy:
        return {}
    headers = _with_query(headers, args or {})
    refused = [name for name in NTFY_REFUSED if _header(headers, name) is not None]
    if refused:
        names = ", ".join(f"X-{name.title()}" for name in refused)
        raise PayloadError(names, "ntfy header not supported by Pulseboard")
    fields: dict[str, Any] = {}
    for header, field in NTFY_HEADERS.items():
        value = _header(headers, header)
        if value is None or field not in known:
            continue
        if header == "priority" and _RFC9218_PRIORITY.fullmatch(value):
            continue
        fields[field] = _split_list(value) if field in LIST_FIELDS else value
    return fields


def _with_query(headers: Headers, args: Mapping[str, str]) -> Headers:
    """Query parameters as headers: ``?title=x`` is ``Title: x``; a header wins."""
    if not args:
        return headers
    merged = Headers(headers)
    for name, value in args.items():
        merged.setdefault(name, value)
    return merged


def _header(headers: Headers, name: str) -> str | None:
    """``X-<name>`` or ``<name>``; an empty value is none (ntfy libraries send empty ones)."""
    value = headers.get(f"X-{name}") or headers.get(name)
    return value if value and value.strip() else None


def merge_fields(body: dict[str, Any], from_headers: dict[str, Any]) -> dict[str, Any]:
    """Body fields plus header fields; a field given both ways, differently, is a 400."""
    merged = dict(body)
    for field, value in from_headers.items():
        if field in merged and merged[field] != value:
            raise PayloadError(field, "given both in the body and in a header")
        merged[field] = value
    return merged
