"""Long evidence tables: the rows that matter survive the cut, and the cut is said."""

from __future__ import annotations

import re
from pathlib import Path

from gates.code.coverage import file_rows
from gates.code.coverage_data import FileCoverage
from gates.engine.spec import CodeSpec
from reports import formats
from tests.reports import sample

WORST = "pkg/zz_worst.py"


def _coverage_document(count: int = 30) -> dict:
    """A failing coverage gate over `count` files, the worst last in path order."""
    files = {f"pkg/mod_{i:02d}.py": FileCoverage(path=f"pkg/mod_{i:02d}.py", statements=100, covered_lines=90 + i % 10,
                                                 branches=0, covered_branches=0, executed=frozenset(),
                                                 missing=frozenset()) for i in range(count - 1)}
    files[WORST] = FileCoverage(path=WORST, statements=100, covered_lines=53, branches=0, covered_branches=0,
                                executed=frozenset(), missing=frozenset())
    doc = sample.build()
    gate = next(g for g in doc["gates"] if g["name"] == "mutation")
    gate.update(name="coverage", status="fail", summary="line 90.1 %", evidence={"tables": [
        {"title": "Files (worst first)", "columns": ["file", "critical tier", "statements", "line %", "branches",
                                                      "branch %"],
         "rows": file_rows(files, CodeSpec(root=Path("."), sources=("pkg",)))}]})
    return doc


def test_markdown_shows_the_worst_module_and_says_how_many_rows_were_left_out() -> None:
    text = formats.render(_coverage_document(), "md")
    rows = [line for line in text.splitlines() if line.startswith("| pkg/")]
    assert len(rows) == 20 and rows[0].startswith(f"| {WORST} |") and "53.0" in rows[0]
    assert "_10 of 30 rows left out here; see the HTML report._" in text


def test_html_lists_the_worst_module_first() -> None:
    text = formats.render(_coverage_document(), "html")
    cells = re.findall(r"<tr><td>(pkg/[^<]+)</td>", text)
    assert len(cells) == 30 and cells[0] == WORST


def test_html_says_how_many_rows_it_left_out() -> None:
    text = formats.render(_coverage_document(count=230), "html")
    assert len(re.findall(r"<tr><td>pkg/", text)) == 200
    assert "30 of 230 rows left out here; the JSON document has them all." in text
