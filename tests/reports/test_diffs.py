"""Surviving-mutant diffs are shown as diffs, not as one run-together line."""

from __future__ import annotations

import html as html_lib
import re

from markdown_it import MarkdownIt

from reports import formats, view
from tests.reports import sample

DIFF = ("--- src/calc.py\n+++ src/calc.py\n@@ -1,3 +1,3 @@\n def add(a, b):\n"
        "-    return a + b  # <b>bold</b>\n+    return a - b  # ```\n```\nnot code any more\n")
REMOVED = "-    return a + b  # <b>bold</b>"
ADDED = "+    return a - b  # ```"


def _document() -> dict:
    doc = sample.build()
    mutation = next(g for g in doc["gates"] if g["name"] == "mutation")
    mutation.update(status="fail", summary="1 mutant survived", remediation="Kill it.", evidence={"tables": [
        {"title": "Surviving mutants (first 1 of 1)", "columns": ["file", "line", "mutant", "diff"],
         "rows": [["src/calc.py", 2, "calc.x_add__mutmut_1", DIFF]]}]})
    return doc


def test_view_splits_the_diff_column_into_marked_lines() -> None:
    mutation = next(g for g in view.build(_document())["gates"] if g["name"] == "mutation")
    [table] = mutation["tables"]
    assert table["columns"] == ["file", "line", "mutant"]
    assert table["rows"] == [["src/calc.py", "2", "calc.x_add__mutmut_1"]]
    kinds = [kind for kind, _ in table["diffs"][0]]
    assert kinds[:6] == ["file", "file", "hunk", "context", "del", "add"]


def test_html_shows_the_diff_in_a_pre_block_line_by_line_and_escaped() -> None:
    text = formats.render(_document(), "html")
    [block] = re.findall(r'<pre class="diff">(.*?)</pre>', text, re.S)
    lines = block.split("\n")
    assert len(lines) == DIFF.rstrip("\n").count("\n") + 1  # every newline kept
    assert f'<span class="d-del">{html_lib.escape(REMOVED)}</span>' in lines
    assert f'<span class="d-add">{html_lib.escape(ADDED)}</span>' in lines
    assert "<b>bold" not in text


def test_markdown_shows_the_diff_as_a_fenced_diff_block_that_cannot_be_closed_early() -> None:
    text = formats.render(_document(), "md")
    fences = [t for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]
    assert [f.info for f in fences] == ["diff"]
    body = fences[0].content.splitlines()
    assert body[4] == REMOVED  # kept as typed, no HTML escaping inside code
    assert body[5].startswith("+    return a - b  # ") and "```" not in fences[0].content
    assert len(body) == DIFF.rstrip("\n").count("\n") + 1 and "not code any more" in body  # still inside the block
