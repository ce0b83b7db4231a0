"""The spans a search marks: RE2's engine called directly, or Python's re for literal
alternatives, must find exactly what the RE2 binding's ``finditer`` finds."""

from __future__ import annotations

import pytest

from app.filters import compile_user_regex
from app.highlight import FAST_TEXT_MAX, Highlighter, literal_alternatives, match_spans
from app.render import mark, marked

PATTERNS = [
    "bench line|nomatch7",
    r"\bt3\b|nomatch3",
    "error",
    "ERROR|warn|fatal",
    r"a\.b|\(x\)",
    r"\bé\b",
    "é|ü",
    "(?i)error",
    "(?i)straße",
    "k",
    "a|",
    "|a",
    "x*",
    r"\b",
    "^",
    "$",
    "a+",
    "(a|b)c",
    "[[:alpha:]]+",
    r"\d+",
    r"\s",
    "<script>",
    r"&\w+;",
    ".",
    "(?i)<B>",
    "ab|a",
    "a|ab",
]
TEXTS = [
    "",
    "INFO pbts12 bench line t2",
    "t3 t33 xt3 t3",
    "ERROR: error Error eRRoR",
    "a.b (x) axb",
    "café é ü über",
    "STRASSE straße Straße",
    "Kelvin \u212a k K",
    "aaa bbb",
    "<script>alert('x')</script> <b>&amp;",
    "tab\there\vvertical",
    "😀 emoji 😀 a",
    "ab abc a",
]


def binding_spans(text: str, pattern: object) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text) if m.end() > m.start()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("ignore_case", [False, True])
@pytest.mark.parametrize("source", PATTERNS)
def test_spans_are_the_bindings(source: str, ignore_case: bool) -> None:
    pattern = compile_user_regex(source, ignore_case=ignore_case)
    for text in TEXTS:
        assert match_spans(text, pattern) == binding_spans(text, pattern), (source, text)


def test_a_long_or_non_ascii_text_takes_re2_and_finds_the_same() -> None:
    pattern = compile_user_regex(r"\bt3\b|nomatch3")
    long_text = "t3 " * (FAST_TEXT_MAX // 3 + 10)
    assert len(long_text) > FAST_TEXT_MAX
    assert match_spans(long_text, pattern) == binding_spans(long_text, pattern)
    assert match_spans("é t3", pattern) == [(2, 4)]


@pytest.mark.parametrize(
    ("source", "fast"),
    [
        ("error", True),
        ("error|warn|fatal", True),
        (r"\bt3\b|nomatch3", True),
        ("(?i)timeout", True),
        (r"a\.b\|c", True),
        ("bench line", True),
        ("a|", False),  # an empty alternative
        ("|a", False),
        (r"\b", False),  # nothing to match but a boundary
        ("a+", False),
        ("a*", False),
        ("a?", False),
        ("a{2}", False),
        ("(a)", False),
        ("[ab]", False),
        (".", False),
        ("^a", False),
        ("a$", False),
        (r"\d", False),
        (r"\w", False),
        ("a(?i)b", False),
        ("(?s)a", False),
        ("é", False),  # not ASCII
        ("a\tb", False),  # not printable
        ("x" * 65, False),  # longer than FAST_PATTERN_MAX
        ("a\\", False),
    ],
)
def test_which_patterns_python_re_may_take(source: str, fast: bool) -> None:
    assert literal_alternatives(source) is fast


def test_the_fast_path_is_taken_for_literal_alternatives_only() -> None:
    assert Highlighter(compile_user_regex("error|warn"))._finditer is not None
    assert Highlighter(compile_user_regex("error+"))._finditer is None


def test_marks_are_escaped_whatever_the_engine() -> None:
    for source in ("<script>", "(?i)<SCRIPT>", "<scr[i]pt>"):
        pattern = compile_user_regex(source)
        html = mark("a <script>alert(1)</script> & b", pattern)
        assert html == "a <mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt; &amp; b"


def test_marked_escapes_every_piece() -> None:
    assert marked("<a>&'\"", []) == "&lt;a&gt;&amp;&#39;&#34;"
    assert marked("x<y>z", [(1, 4)]) == "x<mark>&lt;y&gt;</mark>z"
    assert marked("abcdef", [(11, 13)], offset=10) == "a<mark>bc</mark>def"
