"""Links out of the project, end to end: nothing outside is read, copied or quoted.

One real `readiness assess` (subprocess) of suite_health, coverage, hygiene
and mutation on a git project whose package commits links to a file and a
folder outside the project, to /etc/passwd, /etc and `/`, to nothing, to
itself and to its parent folder. The outside file holds a blocking TODO with
a marker text: if any gate read it, that text would be a finding. The
mutation workspace is made under a TMPDIR of the test so it can be checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.badinput.project import REPO, assert_no_traceback, write_config
from tests.fixtures.links import EXPECTED, SECRET, SYSTEM_TEXT, add_escaping_links
from tests.fixtures.mutation.projects import copy_project

CONFIG = """
[code]
sources = ["mathlib"]
tests = ["tests"]
critical = [{path = "mathlib/core.py", tier = "1"}]
"""

GATES = ("suite_health", "coverage", "hygiene", "mutation")


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("links")
    root = copy_project("good", tmp)
    add_escaping_links(root / "mathlib", tmp / "outside")
    write_config(root, CONFIG)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    (tmp / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp / "tmp")}
    args = [arg for gate in GATES for arg in ("--gate", gate)]
    proc = subprocess.run([sys.executable, "-m", "readiness.cli", "assess", *args, "-o", "out"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    doc = json.loads((root / "out" / "assessment.json").read_text(encoding="utf-8"))
    return root, {g["name"]: g for g in doc["gates"]}, proc


def test_no_gate_crashes_on_links(assessed) -> None:
    _root, gates, proc = assessed
    assert_no_traceback(proc)
    assert {name: gates[name]["status"] for name in GATES} == {
        "suite_health": "pass", "coverage": "pass", "hygiene": "warn", "mutation": "pass"}, \
        {name: gates[name]["summary"] for name in GATES}
    assert proc.returncode == 0, proc.stderr[-3000:]  # a warning does not stop a good project


def test_no_outside_content_reaches_any_report(assessed) -> None:
    root, _gates, proc = assessed
    outputs = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in (root / "out").iterdir()}
    outputs["stdout+stderr"] = proc.stdout + proc.stderr
    for name, text in outputs.items():
        assert SECRET not in text and SYSTEM_TEXT not in text, name


def test_each_link_is_named_once_with_where_it_points(assessed) -> None:
    _root, gates, _proc = assessed
    tables = {t["title"]: t["rows"] for t in gates["hygiene"]["evidence"]["tables"]}
    assert {row[0]: tuple(row[1:]) for row in tables["Links not followed"]} == {
        f"mathlib/{name}": value for name, value in EXPECTED.items()}
    covered = {row[0] for row in gates["coverage"]["evidence"]["tables"][1]["rows"]}
    assert covered == {"mathlib/__init__.py", "mathlib/core.py"}


def test_no_mutation_workspace_is_left(assessed) -> None:
    root, _gates, _proc = assessed
    assert list((root.parent / "tmp").glob("readiness-mutation-*")) == []
