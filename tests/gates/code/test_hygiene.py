"""hygiene: markers through tokenize, stubs through ast, tracked files only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gates.code.hygiene import HygieneGate, Settings, scan_file
from gates.code.source_index import SourceIndex
from gates.code.stubs import find_stubs
from gates.code.todo_markers import comments, scan_comments
from gates.result import Status
from tests.fixtures.links import EXPECTED, SECRET, SYSTEM_TEXT, add_escaping_links
from tests.gates.code.quality_projects import context, copy_project

FROZEN = frozenset()


def check(root: Path, tmp_path: Path, settings: Settings = Settings(), **code):
    return HygieneGate().check(context(root, settings, tmp_path / "work", **code))


def test_blocking_todo_in_a_critical_module_fails(tmp_path):
    result = check(copy_project("blocking_todo", tmp_path), tmp_path)
    assert result.status is Status.FAIL
    assert result.metrics["todo_blocking_critical"] == 1
    assert result.metrics["todo_total"] == 2
    assert result.evidence["failures"] == [
        {"title": "calc/core.py:8",
         "detail": "TODO(blocker): NaN inputs pass through unclamped; decide before release"}]


def test_stub_in_a_critical_module_fails(tmp_path):
    result = check(copy_project("stub", tmp_path), tmp_path)
    assert result.status is Status.FAIL
    assert result.metrics["stubs"] == 1 and result.metrics["stubs_critical"] == 1
    stubs = {t["title"]: t["rows"] for t in result.evidence["tables"]}["Stubs"]
    assert stubs == [["calc/core.py:23", "raise NotImplementedError", "weighted_mean()", 0.95]]


def test_stub_outside_critical_paths_only_warns(tmp_path):
    result = check(copy_project("stub", tmp_path), tmp_path, critical=())
    assert result.status is Status.WARN


def test_bundled_example_project_passes(tmp_path):
    root = copy_project("example", tmp_path)
    result = check(root, tmp_path, sources=("textstats",),
                   critical=(("textstats/metrics.py", "1"), ("textstats/segment.py", "2")))
    assert result.status is Status.PASS
    assert result.metrics["files_scanned"] >= 8 and result.metrics["lines_scanned"] > 300
    assert result.metrics["todo_total"] == 0 and result.metrics["stubs"] == 0


def test_untracked_copies_in_a_git_repository_are_not_scanned(tmp_path):
    root = copy_project("healthy", tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "calc", "tests"], check=True)
    mutants = root / "mutants" / "calc"
    mutants.mkdir(parents=True)
    (mutants / "core.py").write_text("# TODO(blocker): a tool's copy\n")
    result = check(root, tmp_path)
    assert result.evidence["file_source"] == "git ls-files"
    assert result.status is Status.PASS
    assert result.metrics["todo_total"] == 0


def test_outside_git_the_walk_skips_tool_folders_and_says_so(tmp_path):
    root = copy_project("healthy", tmp_path)
    for folder in ("mutants", ".venv", "build"):
        (root / folder).mkdir()
        (root / folder / "x.py").write_text("# TODO(blocker): not ours\n")
    result = check(root, tmp_path)
    assert result.evidence["file_source"] == "walk (not a git repository)"
    assert result.metrics["todo_blocking"] == 0


def test_nothing_to_scan_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = check(tmp_path / "empty", tmp_path)
    assert result.status is Status.ERROR and result.score is None


def scan(text: str, **kw):
    found, marks = scan_comments("m.py", text, blocking_tags=frozenset({"blocker"}),
                                 blocking_markers=frozenset(kw.get("markers", ())))
    return found, marks


def test_markers_inside_strings_are_not_comments():
    text = 's = "# TODO not a comment"\ndoc = """\n# FIXME inside a docstring\n"""\nx = 1  # HACK real\n'
    found, _ = scan(text)
    assert [(f.line, f.label) for f in found] == [(5, "HACK")]


def test_only_explicit_tags_block_not_the_word_critical():
    found, _ = scan("# TODO: critical path, fix soon\n# FIXME[blocker] wrong sign\n")
    assert [(f.label, f.blocking) for f in found] == [("TODO", False), ("FIXME", True)]
    found, _ = scan("# FIXME wrong sign\n", markers=("FIXME",))
    assert found[0].blocking


def test_heuristic_phrases_carry_a_lower_confidence():
    found, _ = scan("# use a list for now\n# not implemented on Windows\n# simplified model\n")
    assert [(f.label, f.confidence) for f in found] == [
        ("for now", 0.6), ("not implemented", 0.8), ("simplified", 0.5)]


def test_suppression_needs_a_reason():
    text = ("x = 1  # TODO(blocker) readiness: ignore[todo] tracked in #12\n"
            "y = 2  # TODO(blocker) readiness: ignore[todo]\n")
    found, unjustified, parsed = scan_file("m.py", text, Settings())
    assert parsed
    assert [(f.line, f.suppressed) for f in found] == [(1, True), (2, False)]
    assert unjustified == ["m.py:2"]


def test_min_confidence_drops_weak_heuristics():
    found, _, _ = scan_file("m.py", "# simplified\n", Settings(min_confidence=0.6))
    assert found == []


def stub_labels(text: str) -> list[tuple[str, str]]:
    return [(f.text, f.label) for f, _ in find_stubs("m.py", text)]


def test_stub_bodies_are_found():
    text = ('def a():\n    raise NotImplementedError("later")\n\n\n'
            'def b():\n    """Doc."""\n    pass\n\n\n'
            'def c(): ...\n\n\n'
            'def d():\n    """Placeholder until the real table exists."""\n    return {}\n\n\n'
            'def e():\n    """Doc only."""\n\n\n'
            'def f():\n    return {}\n')
    assert stub_labels(text) == [("a()", "raise NotImplementedError"), ("b()", "pass"),
                                 ("c()", "..."), ("d()", "placeholder return"),
                                 ("e()", "docstring only")]


def test_abstract_protocol_and_overload_bodies_are_legit():
    text = ("import abc\nfrom typing import Protocol, overload\n\n\n"
            "class Reader(Protocol):\n    def read(self) -> bytes: ...\n\n\n"
            "class Base(abc.ABC):\n    @abc.abstractmethod\n    def run(self):\n"
            "        raise NotImplementedError\n\n\n"
            "@overload\n# a comment between decorator and def\ndef g(x: int) -> int: ...\n\n\n"
            "def g(x):\n    return x\n")
    assert stub_labels(text) == []


def test_nested_and_conditional_functions_are_seen():
    text = ("import sys\nif sys.platform == 'win32':\n    def h():\n        pass\n"
            "else:\n    def h():\n        return 1\n\n\n"
            "class K:\n    def m(self):\n        def inner():\n            pass\n        return inner\n")
    assert stub_labels(text) == [("h()", "pass"), ("inner()", "pass")]


def test_windowed_scan_agrees_with_a_whole_file_tokenize():
    text = ('"""Module.\n\ndef not_code():  # TODO inside the docstring\n"""\n\n'
            "def f():\n    x = '''\n# FIXME in a string\n'''\n    return x  # TODO real one\n\n\n"
            "class C:\n    # XXX in a class\n    y = 1\n")
    found, _ = scan(text)
    whole = [(line, c) for line, c in comments(text) if "TODO" in c or "FIXME" in c or "XXX" in c]
    assert [f.line for f in found] == [line for line, _ in whole] == [10, 14]


def test_quote_parity_tricks_fall_back_to_the_whole_file():
    assert not SourceIndex("x = '\"\"\"'\n").reliable
    assert SourceIndex('"""Doc."""\n').reliable


def test_unparsable_file_is_reported_not_fatal(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "bad.py").write_text("def broken(:\n    pass\n")
    (root / "good.py").write_text("x = 1\n")
    result = check(root, tmp_path, critical=())
    assert result.evidence["unparsable"] == ["bad.py"]
    assert result.metrics["files_scanned"] == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX git checkout")
def test_exclude_patterns_skip_paths(tmp_path):
    root = copy_project("blocking_todo", tmp_path)
    result = check(root, tmp_path, Settings(exclude=("calc/*",)))
    assert result.metrics["todo_total"] == 0


def test_project_git_does_not_track_is_walked_and_says_so(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    root = copy_project("blocking_todo", tmp_path)  # untracked copy inside a checkout
    result = check(root, tmp_path)
    assert result.evidence["file_source"] == "walk (git tracks no file under the root)"
    assert result.status is Status.FAIL


# -- false positives seen on a real repository ---------------------------------

def labels(text: str) -> list[str]:
    found, _ = scan(text)
    return [f.label for f in found]


@pytest.mark.parametrize("comment", [
    "# NOTE: This is an intentional fallback implementation, not a placeholder.",
    "# Create .placeholder marker",
    "# write build/.placeholder so the folder is kept",
    "# see TODO.md for the roadmap",
    "# this is not a stub: the defaults are the behaviour",
    "# not a temporary fix; the cache is the design",
])
def test_negated_phrases_and_file_names_are_not_markers(comment):
    assert labels(f"x = 1\n{comment}\n") == []


@pytest.mark.parametrize("comment, label", [
    ("# placeholder until the real tokenizer lands", "placeholder"),
    ("# This is a placeholder.", "placeholder"),
    ("# PLACEHOLDER: wire the real loss", "PLACEHOLDER"),
    ("# TODO: not a placeholder any more once #12 lands", "TODO"),
    ("# returns a stub for now", "for now"),
    ("# stubbed out", "stub"),
    ("# temporary workaround", "temporary"),
    ("# Temporary/internal configs", "temporary"),
    ("# not implemented on Windows", "not implemented"),
])
def test_true_markers_stay_found(comment, label):
    assert labels(f"x = 1\n{comment}\n") == [label]


def test_a_docstring_that_says_not_a_placeholder_is_no_stub():
    text = ('def fallback():\n'
            '    """NOTE: This is an intentional fallback implementation, not a placeholder."""\n'
            '    return None\n\n\n'
            'def marker():\n    # Create .placeholder marker\n    return True\n\n\n'
            'def real():\n    """Placeholder until the table exists."""\n    return {}\n')
    assert stub_labels(text) == [("real()", "placeholder return")]


# -- links that leave the project -------------------------------------------------

def linked_project(tmp_path: Path, *, git: bool) -> Path:
    root = copy_project("healthy", tmp_path)
    add_escaping_links(root / "calc", tmp_path / "outside")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return root


@pytest.mark.parametrize("git", [True, False], ids=["git", "walk"])
def test_links_out_of_the_project_are_named_never_read(tmp_path, git):
    root = linked_project(tmp_path, git=git)
    result = check(root, tmp_path)
    assert SECRET not in repr(result) and SYSTEM_TEXT not in repr(result)
    assert result.metrics["todo_total"] == 0 and result.metrics["stubs"] == 0
    links = {t["title"]: t["rows"] for t in result.evidence["tables"]}["Links not followed"]
    assert {row[0]: tuple(row[1:]) for row in links} == {f"calc/{k}": v for k, v in EXPECTED.items()}
    assert result.status is Status.WARN and "8 links not followed" in result.summary
    assert result.metrics["links_not_followed"] == 8


def test_excluded_paths_hold_no_link_findings(tmp_path):
    root = linked_project(tmp_path, git=False)
    result = check(root, tmp_path, Settings(exclude=("calc/*",)))
    assert result.metrics["links_not_followed"] == 0 and result.status is Status.PASS
    result = check(root, tmp_path, Settings(exclude=("calc/*.py",)))
    assert result.metrics["links_not_followed"] == 4  # etc, outdir, rootlink, up
