"""The subscribe client's pure parts: SSE frames and the parameters of each connection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.cli.subscribe import FollowRequest, SseFrame, sse_frames


def test_frames_carry_id_event_and_joined_data() -> None:
    lines = ["retry: 2000", "", ": ping", "id: a-1", "event: ops.alerts", "data: {", "data: }", ""]
    assert list(sse_frames(lines)) == [SseFrame("a-1", "ops.alerts", "{\n}")]


def test_a_frame_without_data_dispatches_nothing_and_a_heartbeat_is_no_frame() -> None:
    lines = ["id: a-1", "event: x", "", ": ping", "", "data:no-space", ""]
    assert list(sse_frames(lines)) == [SseFrame(None, "message", "no-space")]


def test_an_unfinished_frame_is_not_dispatched() -> None:
    assert list(sse_frames(["id: a-1", "data: half"])) == []


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"])), min_size=1))
def test_any_data_lines_round_trip(parts: list[str]) -> None:
    lines = ["id: z-9", "event: e", *(f"data: {part}" for part in parts), ""]
    assert list(sse_frames(lines)) == [SseFrame("z-9", "e", "\n".join(parts))]


def test_since_and_history_only_start_a_stream_without_cursor() -> None:
    request = FollowRequest("http://x", ("log.*", "ops.alerts"), since="10m", history=5)
    first = request.params(None)
    assert first.get_list("channel") == ["log.*", "ops.alerts"]
    assert (first["format"], first["since"], first["history"]) == ("json", "10m", "5")
    resumed = request.params("e-7")
    assert "since" not in resumed and "history" not in resumed
    assert request.headers("e-7")["Last-Event-ID"] == "e-7"
    assert "Last-Event-ID" not in request.headers(None)


def test_the_token_goes_in_the_authorization_header() -> None:
    assert (
        FollowRequest("u", ("a",), token="t0ken").headers(None)["Authorization"] == "Bearer t0ken"
    )
    assert "Authorization" not in FollowRequest("u", ("a",)).headers(None)
