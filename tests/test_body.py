"""Publish bodies and ntfy headers read into payloads: each way in, each refusal."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.datastructures import Headers

from app.events import KindRegistry, PayloadError
from app.web.body import FORM, body_payload, header_fields, merge_fields

KINDS = KindRegistry()
NOTIFY = KINDS.get("notify")
CHAT = KINDS.get("chat")


def read(text: str, mimetype: str = FORM, headers: dict[str, str] | None = None) -> dict[str, Any]:
    payload = body_payload(NOTIFY, mimetype, text, max_fields=20)
    return NOTIFY.validate(merge_fields(payload, header_fields(NOTIFY, Headers(headers or {}))))


SAME = {"message": "disk full", "title": "db-1", "priority": 4, "tags": ["disk", "db-1"]}


@pytest.mark.parametrize(
    ("text", "mimetype", "headers"),
    [
        ('{"message": "disk full", "title": "db-1", "priority": 4, "tags": ["disk", "db-1"]}',
         "application/json", {}),
        ('{"message": "disk full", "title": "db-1", "priority": "high", "tags": ["disk", "db-1"]}',
         FORM, {}),
        ("message=disk+full&title=db-1&priority=high&tags=disk&tags=db-1", FORM, {}),
        ("message=disk%20full&title=db-1&priority=4&tags=disk,db-1", FORM, {}),
        ("disk full", "text/plain", {"Title": "db-1", "Priority": "high", "Tags": "disk,db-1"}),
        ("disk full", FORM, {"X-Title": "db-1", "X-Priority": "4", "X-Tags": "disk, db-1"}),
        ("", "", {"X-Message": "disk full", "Title": "db-1", "Priority": "4", "Tags": "disk,db-1"}),
    ],
)  # fmt: skip
def test_json_form_text_and_ntfy_headers_give_the_same_payload(
    text: str, mimetype: str, headers: dict[str, str]
) -> None:
    assert read(text, mimetype, headers) == {**SAME, "level": "warning"}


def test_a_form_without_any_of_the_kinds_fields_is_the_message() -> None:
    assert read("a=b&c=d")["message"] == "a=b&c=d"
    assert read("message")["message"] == "message"
    assert read("deploy 42 done")["message"] == "deploy 42 done"


def test_a_body_that_looks_like_json_but_is_not_is_a_400() -> None:
    with pytest.raises(PayloadError) as refused:
        read('{"message": "x",}', "text/plain")
    assert refused.value.field == "body"


def test_unknown_form_fields_are_a_400_naming_each() -> None:
    with pytest.raises(PayloadError) as refused:
        read("message=x&priorty=5&colour=red")
    assert refused.value.field == "colour, priorty"


def test_a_field_given_twice_is_a_400_but_tags_repeat() -> None:
    with pytest.raises(PayloadError) as refused:
        read("message=x&message=y")
    assert refused.value.field == "message"
    assert read("message=x&tags=a&tags=b,c")["tags"] == ["a", "b", "c"]


def test_click_is_the_link_and_browser_priority_headers_are_not_ntfys() -> None:
    data = read("x", "text/plain", {"Click": "https://example.org/d/1", "Priority": "u=1, i"})
    assert data == {"message": "x", "link": "https://example.org/d/1", "level": "info"}


@pytest.mark.parametrize("header", ["X-Delay", "Delay", "Email", "X-Actions", "Attach", "Call"])
def test_ntfy_headers_we_cannot_honour_are_refused(header: str) -> None:
    with pytest.raises(PayloadError) as refused:
        read("x", "text/plain", {header: "anything"})
    assert "not supported" in refused.value.message


def test_presentation_hints_are_ignored() -> None:
    assert read("*x*", "", {"Markdown": "true", "Tags": ""}) == {"message": "*x*", "level": "info"}


def test_header_and_body_disagreeing_is_a_400() -> None:
    with pytest.raises(PayloadError) as refused:
        read('{"message": "x", "title": "a"}', "application/json", {"Title": "b"})
    assert refused.value.field == "title"


def test_bad_header_priority_is_a_400_naming_priority() -> None:
    with pytest.raises(PayloadError) as refused:
        read("x", "text/plain", {"Priority": "9"})
    assert refused.value.field == "priority"


def test_ntfy_headers_mean_nothing_on_a_chat_channel() -> None:
    assert header_fields(CHAT, Headers({"Title": "x", "Delay": "10m"})) == {}
    payload = body_payload(CHAT, FORM, "user=ann&text=hi", max_fields=20)
    assert CHAT.validate(payload) == {"user": "ann", "text": "hi"}


def test_ntfy_query_parameters_are_fields_and_others_are_refused() -> None:
    args = {"title": "db-1", "priority": "high"}
    assert header_fields(NOTIFY, Headers({"Title": "T"}), args) == {
        "title": "T",
        "priority": "high",
    }
    with pytest.raises(PayloadError) as refused:
        header_fields(NOTIFY, Headers(), {"titel": "x", "message": "m"})
    assert refused.value.field == "titel"
    with pytest.raises(PayloadError) as refused:
        header_fields(NOTIFY, Headers(), {"delay": "10m"})
    assert "not supported" in refused.value.message
    with pytest.raises(PayloadError):
        header_fields(CHAT, Headers(), {"title": "x"})
