"""What counts as this site: allowed ``Host`` names, same-origin checks, local redirect targets.

Pure functions; the web layer calls them on every request, tests call them
with tables of hostile input.

Deliberate oddities:
- An allowed host matches at any port: a browser that reached us through
  ``localhost:8000`` or a proxy's ``dash.example.com`` names the port it
  used, not ours. DNS rebinding is about the *name* (``evil.example``
  resolving to 127.0.0.1), so the name is what is checked.
- ``safe_next`` percent-decodes until nothing changes before it looks:
  ``/%09/evil.example`` is ``/\\t/evil.example``, which browsers read as
  ``//evil.example``, another site.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

ANY_HOST = "*"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_HOST_ENTRY = re.compile(r"\*|\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_DECODE_ROUNDS = 5


def is_loopback_bind(bind: str) -> bool:
    """True when ``HOST:PORT`` listens on loopback only (``localhost``, 127.0.0.0/8, ``[::1]``)."""
    host = bind.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_allowed_hosts(bind: str, configured: list[str] | None) -> tuple[str, ...]:
    """The Host names this server answers to; ValueError when a non-loopback bind sets none.

    >>> resolve_allowed_hosts("127.0.0.1:8000", None)
    ('localhost', '127.0.0.1', '[::1]')
    """
    if configured is None:
        if is_loopback_bind(bind):
            return LOOPBACK_HOSTS
        raise ValueError(
            f"server.bind {bind!r} is not loopback: list the names clients use to reach it "
            '(e.g. ["dash.example.com"]), or ["*"] to answer any Host'
        )
    entries = tuple(entry.strip().lower() for entry in configured)
    for entry in entries:
        if not _HOST_ENTRY.fullmatch(entry):
            raise ValueError(f"expected a host name, an IP address or '*', got {entry!r}")
    if not entries:
        raise ValueError("empty: no request could be answered; use ['*'] to answer any Host")
    return entries


def host_name(host: str) -> str | None:
    """The name part of a ``Host`` header (lowercase, IPv6 in brackets); None when malformed.

    >>> host_name("LocalHost:8000"), host_name("[::1]:80"), host_name("a:b:c")
    ('localhost', '[::1]', None)
    """
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return None
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
        if ":" in port_text:
            return None
    if port is not None and not _PORT.fullmatch(port):
        return None
    return name if name and _HOST_ENTRY.fullmatch(name) and name != ANY_HOST else None


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """True when the ``Host`` header ``host`` names one of ``allowed`` (any port)."""
    if ANY_HOST in allowed:
        return True
    return host_name(host) in allowed


def same_origin(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """True when ``Origin`` names this very host (and port), and that host is allowed.

    Raises ValueError when ``origin`` is not a URL at all (``http://[``): a 400,
    not a refusal.
    """
    parts = urlsplit(origin)
    _ = parts.port  # urlsplit checks the host part; reading .port checks the port
    if not parts.netloc or parts.netloc.lower() != host.lower():
        return False
    return host_allowed(host, allowed)


def check_origin(origin: str) -> str:
    """``origin`` normalised (``https://host[:port]``); ValueError when it is not an origin.

    >>> check_origin("https://Status.Example:8443")
    'https://status.example:8443'
    """
    parts = urlsplit(origin)
    _ = parts.port  # reading it checks the port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an origin such as 'https://status.example', got {origin!r}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"an origin is scheme://host[:port] only, got {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/``: where to go after signing in.

    A path starts with one ``/`` and holds no backslash, whitespace or control
    character, in any percent-decoding of it.

    >>> safe_next("/channels/log.app?q=x"), safe_next("/%09/evil.example")
    ('/channels/log.app?q=x', '/')
    """
    if not target or not target.isascii():
        return "/"
    text = target
    for _ in range(_DECODE_ROUNDS):
        if not _local_path(text):
            return "/"
        try:
            decoded = unquote(text, errors="strict")
        except UnicodeDecodeError:
            return "/"
        if decoded == text:
            return target
        text = decoded
    return "/"  # still encoded after several rounds: nobody writes a link like that


def _local_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    return all(char.isprintable() and not char.isspace() for char in text)


def public_base_url(bind: str, public_url: str | None, allowed: tuple[str, ...] = ()) -> str:
    """The absolute URL browsers reach us at, without a trailing ``/`` (for links we send out).

    ``server.public_url`` when set; else derived from the bind address, with
    the first named allowed host standing in for a wildcard address (0.0.0.0).

    >>> public_base_url("127.0.0.1:8000", None), public_base_url("0.0.0.0:80", None, ("dash",))
    ('http://127.0.0.1:8000', 'http://dash:80')
    """
    if public_url:
        return public_url.rstrip("/")
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        named = [name for name in allowed if name != ANY_HOST]
        host = named[0] if named else "127.0.0.1"
    return f"http://{host}:{port}"
