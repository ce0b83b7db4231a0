"""Where a logtail restart continues: ``resume_plan`` and the marks, called directly."""

from __future__ import annotations

from app.sources.logtail.checkpoint import (
    FINGERPRINT_BYTES,
    Candidate,
    FileMark,
    decode_marks,
    encode_marks,
    fingerprint,
    grow_head,
    resume_plan,
)

HEAD = b"2024-01-01 first line of the old file\n"


def mark(inode: int, offset: int, head: bytes = HEAD, lineno: int | None = 7) -> FileMark:
    return FileMark(1, inode, fingerprint(head), len(head), offset, lineno)


def file(name: str, inode: int, size: int, head: bytes = HEAD) -> Candidate:
    return Candidate(name, 1, inode, size, head[:size])


def test_marks_survive_their_encoding() -> None:
    marks = [mark(10, 100), mark(11, 0, b"", None)]
    assert decode_marks(encode_marks(marks)) == marks


def test_an_unreadable_checkpoint_is_none() -> None:
    assert decode_marks('[{"device": 1}]') is None
    assert decode_marks("{}") is None


def test_the_head_grows_only_without_a_hole_and_up_to_the_bound() -> None:
    assert grow_head(b"", 0, b"abc") == b"abc"
    assert grow_head(b"abc", 3, b"de") == b"abcde"
    assert grow_head(b"abc", 1, b"bcd") == b"abcd"  # a read from before the head's end
    assert grow_head(b"abc", 4, b"x") == b"abc"  # a hole: the head stays as it is
    assert len(grow_head(b"a" * 1000, 1000, b"b" * 100)) == FINGERPRINT_BYTES


def test_the_same_file_continues_at_its_offset() -> None:
    plan = resume_plan([mark(10, 30)], file("app.log", 10, 60), [])
    assert plan.current is not None and plan.current.mark.offset == 30
    assert (plan.rotated, plan.lost) == ([], 0)


def test_a_file_renamed_while_down_is_found_by_inode_and_read_first() -> None:
    renamed = file("app.log.1", 10, 60)
    plan = resume_plan([mark(10, 30)], file("app.log", 11, 5, b"new\n"), [renamed])
    assert [(r.candidate.name, r.mark.offset) for r in plan.rotated] == [("app.log.1", 30)]
    assert plan.current is None  # the new app.log: from byte 0
    assert (plan.renamed, plan.copied, plan.lost) == (1, 0, 0)


def test_two_rotations_while_down_keep_their_order() -> None:
    marks = [mark(10, 60), mark(11, 20, b"second file\n")]
    others = [file("app.log.1", 11, 40, b"second file\n"), file("app.log.2", 10, 60)]
    plan = resume_plan(marks, file("app.log", 12, 0, b""), others)
    assert [r.candidate.name for r in plan.rotated] == ["app.log.2", "app.log.1"]
    assert plan.current is None


def test_a_reused_inode_with_other_content_is_not_the_file() -> None:
    plan = resume_plan([mark(10, 30)], None, [file("other.log", 10, 90, b"X" * 90)])
    assert (plan.rotated, plan.current, plan.lost) == ([], None, 1)


def test_copytruncate_while_down_continues_in_the_copy() -> None:
    truncated = file("app.log", 10, 8, b"after!\n")  # same inode, shorter than the offset
    copy = file("app.log.1", 20, 60)
    plan = resume_plan([mark(10, 30)], truncated, [copy])
    assert [(r.candidate.name, r.mark.offset) for r in plan.rotated] == [("app.log.1", 30)]
    assert plan.current is None  # the truncated app.log: from byte 0
    assert (plan.renamed, plan.copied) == (0, 1)


def test_copytruncate_refilled_past_the_offset_is_told_by_its_fingerprint() -> None:
    refilled = file("app.log", 10, 500, b"2024-01-02 other text, longer than the old head\n")
    plan = resume_plan([mark(10, 30)], refilled, [file("app.log.1", 20, 60)])
    assert [r.candidate.name for r in plan.rotated] == ["app.log.1"]
    assert plan.current is None


def test_a_copy_shorter_than_the_offset_is_not_the_copy() -> None:
    plan = resume_plan([mark(10, 30)], file("app.log", 10, 0, b""), [file("app.log.1", 20, 29)])
    assert (plan.rotated, plan.current, plan.lost) == ([], None, 1)


def test_a_replaced_file_is_read_from_its_start_and_a_gone_one_is_lost() -> None:
    plan = resume_plan([mark(10, 30)], file("app.log", 11, 60, b"unrelated\n"), [])
    assert (plan.rotated, plan.current, plan.lost) == ([], None, 1)
    gone = resume_plan([mark(10, 30)], None, [])
    assert (gone.rotated, gone.current, gone.lost) == ([], None, 1)


def test_a_small_file_is_known_by_the_bytes_it_had() -> None:
    small = mark(10, 4, b"abc\n")
    plan = resume_plan([small], file("app.log", 10, 4000, b"abc\n" + b"d" * 3996), [])
    assert plan.current is not None and plan.current.mark == small
