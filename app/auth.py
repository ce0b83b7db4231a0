"""Who may read and who may publish: tokens, their scopes, and the checks.

A *grant* is what one token allows: reading and publishing on channel
patterns (None = every channel). Unscoped ``publish_tokens`` publish
everywhere; unscoped ``read_tokens`` read everywhere; ``[[auth.tokens]]``
entries carry their own ``read`` and ``publish`` patterns, and ``metrics =
true`` for the one kind of token that may read ``/metrics`` (which names
every channel) once any token is configured.

Deliberate oddities:
- A token is compared against every configured token with
  ``hmac.compare_digest`` (constant time), and the loop never stops early,
  so timing tells nothing about which token nearly matched.
- A grant's ``id`` (a hash prefix of its token) is what the session cookie
  holds: the cookie never carries the token itself, and removing a token
  from the config ends the sessions it opened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec

from app.events import PayloadError, pattern_matches, validate_pattern
from app.settings import AuthSettings, SettingsError, TokenSettings
from app.urls import is_loopback_bind

Scope = tuple[str, ...] | None
READ_ONLY = "/read"  # a session value's suffix: the grant's read scope only (kiosk sessions)


@dataclass(frozen=True)
class Grant:
    """What one token allows; ``None`` for a scope means every channel."""

    id: str
    read: Scope
    publish: Scope
    metrics: bool = False

    def can_publish(self, channel: str) -> bool:
        """True when this grant may publish to ``channel``."""
        return self.publish is None or any(pattern_matches(p, channel) for p in self.publish)

    def can_read(self, pattern: str) -> bool:
        """True when every channel ``pattern`` can match lies inside the read scope."""
        return self.read is None or any(pattern_covers(scope, pattern) for scope in self.read)

    def can_read_some(self, pattern: str) -> bool:
        """True when some channel ``pattern`` can match lies inside the read scope (boards)."""
        return self.read is None or any(patterns_overlap(scope, pattern) for scope in self.read)


def pattern_covers(scope: str, pattern: str) -> bool:
    """True when every channel matching ``pattern`` also matches ``scope``.

    >>> pattern_covers("ops.*", "ops.deploys"), pattern_covers("ops.*", "*.deploys")
    (True, False)
    """
    return pattern_matches(scope, pattern)  # the pattern's own ``*`` is matched as a name


def patterns_overlap(a: str, b: str) -> bool:
    """True when some channel name matches both patterns (``*`` is one segment).

    >>> patterns_overlap("ops.*", "*.deploys"), patterns_overlap("ops.*", "log.*")
    (True, False)
    """
    left, right = a.split("."), b.split(".")
    return len(left) == len(right) and all(
        x == y or "*" in (x, y) for x, y in zip(left, right, strict=True)
    )


def session_value(grant: Grant, *, read_only: bool) -> str:
    """What the session store keeps for a session of ``grant``: its id, read-only or not."""
    return grant.id + (READ_ONLY if read_only else "")


def token_id(token: str) -> str:
    """A stable, non-secret name for a token (logs and session cookies use it)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Authority:
    """The configured tokens; answers which grant a presented token holds."""

    def __init__(self, grants: list[tuple[str, Grant]]) -> None:
        self._grants = grants
        self._by_id = {grant.id: grant for _token, grant in grants}
        self.read_required = any(grant.read != () for _token, grant in grants)
        self.publish_required = any(grant.publish != () for _token, grant in grants)

    @property
    def enabled(self) -> bool:
        """True when any token is configured."""
        return bool(self._grants)

    def grant_for(self, token: str) -> Grant | None:
        """The grant of ``token``, compared in constant time against every token."""
        found = None
        presented = token.encode()
        for known, grant in self._grants:
            if hmac.compare_digest(presented, known.encode()):
                found = grant
        return found

    def for_session(self, value: str) -> Grant | None:
        """The grant a stored session value gives, if its token is still configured.

        A read-only value (a kiosk session) publishes nothing and reads no metrics.
        """
        grant_id, read_only, _ = value.partition(READ_ONLY)
        grant = self._by_id.get(grant_id)
        if grant is None or not read_only:
            return grant
        return replace(grant, publish=(), metrics=False)


def build_authority(settings: AuthSettings) -> Authority:
    """Grants from ``publish_tokens``, ``read_tokens``, ``[[auth.tokens]]`` and the tokens file."""
    entries = list(settings.tokens)
    if settings.tokens_file:
        entries.extend(_read_tokens_file(Path(settings.tokens_file)))
    merged: dict[str, tuple[Scope, Scope]] = {}
    for token in settings.publish_tokens:
        merged[token] = _union(merged.get(token, ((), ())), ((), None))
    for token in settings.read_tokens:
        merged[token] = _union(merged.get(token, ((), ())), (None, ()))
    for index, entry in enumerate(entries):
        scopes = (_scope(entry.read, index, "read"), _scope(entry.publish, index, "publish"))
        merged[entry.token] = _union(merged.get(entry.token, ((), ())), scopes)
    metrics = {entry.token for entry in entries if entry.metrics}
    return Authority(
        [
            (token, Grant(token_id(token), read, publish, token in metrics))
            for token, (read, publish) in merged.items()
        ]
    )


def _scope(patterns: list[str], index: int, key: str) -> tuple[str, ...]:
    try:
        return tuple(validate_pattern(p, field=f"auth.tokens[{index}].{key}") for p in patterns)
    except PayloadError as error:
        raise SettingsError(str(error)) from None


def _union(a: tuple[Scope, Scope], b: tuple[Scope, Scope]) -> tuple[Scope, Scope]:
    def join(x: Scope, y: Scope) -> Scope:
        return None if x is None or y is None else tuple(dict.fromkeys(x + y))

    return join(a[0], b[0]), join(a[1], b[1])


def _read_tokens_file(path: Path) -> list[TokenSettings]:
    """A TOML file of ``[[tokens]]`` entries (token, read, publish), kept out of the main config."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
        return msgspec.convert(raw.get("tokens", []), list[TokenSettings], strict=True)
    except FileNotFoundError:
        raise SettingsError(f"auth.tokens_file: {path} not found") from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as error:
        raise SettingsError(f"auth.tokens_file: {path}: {error}") from None


def check_exposure(bind: str, authority: Authority, *, allow_anonymous: bool) -> None:
    """Refuse to listen beyond loopback with no token configured, unless told to.

    Anyone who can reach such a server could publish to every channel and read
    every log: that must be a decision (``auth.allow_anonymous = true``), not
    an accident of ``bind = "0.0.0.0:8000"``.
    """
    if is_loopback_bind(bind) or authority.enabled or allow_anonymous:
        return
    raise SettingsError(
        f"server.bind: {bind!r} is reachable from other hosts and no token is configured; "
        "set auth.publish_tokens / auth.read_tokens, or auth.allow_anonymous = true "
        "to serve anyone who can connect"
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is.

    ``Basic`` with an empty user name and the token as password is ntfy's other
    way to send a token (its client libraries use it), so it counts too.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "basic":
        token = _basic_password(token.strip())
    elif scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _basic_password(credentials: str) -> str:
    """The password of ``Basic`` credentials whose user name is empty; "" otherwise."""
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return ""
    return password if not user else ""
