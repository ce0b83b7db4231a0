"""Allowed hosts, same-origin checks and sign-in redirect targets, as pure functions."""

from __future__ import annotations

import pytest

from app.urls import (
    LOOPBACK_HOSTS,
    check_origin,
    host_allowed,
    host_name,
    is_loopback_bind,
    public_base_url,
    resolve_allowed_hosts,
    safe_next,
    same_origin,
)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("/channels/log.app", "/channels/log.app"),
        ("/channels/log.app?q=ERROR&level=warn", "/channels/log.app?q=ERROR&level=warn"),
        ("/events%3Fchannel%3Dx", "/events%3Fchannel%3Dx"),
        (None, "/"),
        ("", "/"),
        ("channels", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("/%09/evil.example", "/"),  # the reported case: /\t/ reads as //
        ("/\t/evil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("/%2Fevil.example", "/"),
        ("/%252F%252Fevil.example", "/"),  # decoded twice
        ("/a\nb", "/"),
        ("/a%0Ab", "/"),
        ("/a%0D%0ASet-Cookie:x", "/"),
        ("/a\x00b", "/"),
        ("/a%00b", "/"),
        ("/a b", "/"),
        ("/a%20b", "/"),
        ("/a\u2028b", "/"),
        ("/a%E2%80%A8b", "/"),
        ("/a%ffb", "/"),  # not UTF-8 once decoded
        ("/ä", "/"),  # Location must stay ASCII
        ("/%" + "25" * 8 + "2Fevil.example", "/"),  # a slash encoded nine times
        ("/100%25/%25", "/100%25/%25"),  # a literal % is fine
    ],
)
def test_safe_next_allows_only_paths_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("evil.example:8000", "evil.example"),
        ("", None),
        ("a:b:c", None),
        ("localhost:http", None),
        ("localhost:123456", None),
        ("[::1]x", None),
        ("*", None),
        ("evil example", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_loopback_names_are_allowed_at_any_port_and_nothing_else() -> None:
    for header in ("localhost:8000", "127.0.0.1:1", "[::1]:9", "localhost"):
        assert host_allowed(header, LOOPBACK_HOSTS), header
    for header in ("evil.example:8000", "localhost.evil.example", "127.0.0.2", "", "a:b:c"):
        assert not host_allowed(header, LOOPBACK_HOSTS), header
    assert host_allowed("anything.example", ("*",))
    assert host_allowed("Dash.Example.com:443", ("dash.example.com",))


def test_same_origin_needs_the_same_host_and_port_on_the_list() -> None:
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000", LOOPBACK_HOSTS)
    assert not same_origin("http://127.0.0.1:9000", "127.0.0.1:8000", LOOPBACK_HOSTS)
    assert not same_origin("http://evil.example:8000", "evil.example:8000", LOOPBACK_HOSTS)
    assert not same_origin("null", "127.0.0.1:8000", LOOPBACK_HOSTS)
    for broken in ("http://[", "http://x:port", "http://[::1"):
        with pytest.raises(ValueError):
            same_origin(broken, "127.0.0.1:8000", LOOPBACK_HOSTS)


def test_allowed_hosts_default_only_on_loopback() -> None:
    assert is_loopback_bind("127.0.0.1:8000")
    assert is_loopback_bind("localhost:8000")
    assert is_loopback_bind("[::1]:8000")
    assert not is_loopback_bind("0.0.0.0:8000")
    assert not is_loopback_bind("[::]:8000")
    assert not is_loopback_bind("dash.example.com:8000")
    assert resolve_allowed_hosts("127.0.0.1:8000", None) == LOOPBACK_HOSTS
    assert resolve_allowed_hosts("0.0.0.0:8000", ["*"]) == ("*",)
    assert resolve_allowed_hosts("0.0.0.0:8000", ["Dash.Example.com"]) == ("dash.example.com",)
    with pytest.raises(ValueError, match="not loopback"):
        resolve_allowed_hosts("0.0.0.0:8000", None)
    for bad in (["http://dash.example.com"], ["dash.example.com:8000"], [], ["a b"]):
        with pytest.raises(ValueError):
            resolve_allowed_hosts("0.0.0.0:8000", bad)


@pytest.mark.parametrize(
    ("bind", "public_url", "allowed", "base"),
    [
        ("127.0.0.1:8000", None, (), "http://127.0.0.1:8000"),
        ("[::1]:9000", None, (), "http://[::1]:9000"),
        ("0.0.0.0:8000", None, ("*", "dash.example.com"), "http://dash.example.com:8000"),
        ("0.0.0.0:8000", None, ("*",), "http://127.0.0.1:8000"),
        ("0.0.0.0:8000", "https://dash.example.com/pulse/", (), "https://dash.example.com/pulse"),
    ],
)
def test_the_public_base_url_is_the_setting_or_derived_from_the_bind_address(
    bind: str, public_url: str | None, allowed: tuple[str, ...], base: str
) -> None:
    assert public_base_url(bind, public_url, allowed) == base


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://Status.Example", "https://status.example"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_check_origin_normalises(origin: str, normal: str) -> None:
    assert check_origin(origin) == normal


@pytest.mark.parametrize(
    "origin",
    ["status.example", "ftp://a.example", "https://a.example/", "https://a.example?x", "*",
     "https://u:p@a.example", "https://a.example:99999", "https://"],
)  # fmt: skip
def test_check_origin_refuses_what_is_not_an_origin(origin: str) -> None:
    with pytest.raises(ValueError):
        check_origin(origin)
