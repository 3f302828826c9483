"""project_paths: the one place that decides which paths a gate may open."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gates.code.project_paths import PathKind, ProjectPaths
from tests.fixtures.links import EXPECTED, SECRET, add_escaping_links


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "core.py").write_text("x = 1\n")
    (root / "pkg" / "alias.py").symlink_to("core.py")
    add_escaping_links(root / "pkg", tmp_path / "outside")
    return root


KINDS = {"dangling.py": PathKind.DANGLING, "etc": PathKind.ESCAPES, "link.py": PathKind.ESCAPES,
         "loop.py": PathKind.LOOP, "outdir": PathKind.ESCAPES, "passwd.py": PathKind.ESCAPES,
         "rootlink": PathKind.ESCAPES, "up": PathKind.LOOP, "core.py": PathKind.INSIDE,
         "alias.py": PathKind.INSIDE}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_of_link_is_classified(project: Path, name: str) -> None:
    assert ProjectPaths(project).classify(project / "pkg" / name) is KINDS[name]


def test_a_path_under_a_link_out_of_the_project_escapes_too(project: Path) -> None:
    paths = ProjectPaths(project)
    assert paths.classify("pkg/etc/passwd") is PathKind.ESCAPES
    assert paths.classify("pkg/outdir/secret.py") is PathKind.ESCAPES
    assert paths.classify("pkg/not_there.py") is PathKind.INSIDE  # simply missing: the caller's business


def test_a_root_reached_through_a_link_is_still_the_root(project: Path, tmp_path: Path) -> None:
    (tmp_path / "via").symlink_to(project)
    assert ProjectPaths(tmp_path / "via").classify(tmp_path / "via" / "pkg" / "core.py") is PathKind.INSIDE


def test_folders_linking_to_each_other_are_a_loop_once_walked_into(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)
    (root / "c").mkdir()
    (root / "a" / "b").symlink_to("../c")
    (root / "c" / "d").symlink_to("../a")
    paths = ProjectPaths(root)
    assert paths.classify(root / "a" / "b") is PathKind.INSIDE
    assert paths.classify(root / "a" / "b" / "d") is PathKind.LOOP
    found = paths.files(root, follow_links=True)
    assert found.paths == ()
    assert [(r.path, r.kind) for r in found.refused] == [("a/b/d", PathKind.LOOP), ("c/d/b", PathKind.LOOP)]


def test_a_walk_keeps_inside_files_and_names_every_refused_link(project: Path) -> None:
    found = ProjectPaths(project).files(project / "pkg", suffix=".py")
    assert found.paths == ("alias.py", "core.py")
    assert {r.path: (r.target, r.kind) for r in found.refused} == {
        name: (target, KINDS[name]) for name, (target, _why) in EXPECTED.items()}
    assert all(SECRET not in r.describe() for r in found.refused)


def test_a_listed_file_that_is_a_refused_link_is_dropped(project: Path) -> None:
    found = ProjectPaths(project).files(project / "pkg" / "passwd.py", suffix=".py")
    assert found.paths == () and [r.path for r in found.refused] == ["passwd.py"]
    assert ProjectPaths(project).files(project / "pkg" / "core.py").absolute() == [project / "pkg" / "core.py"]


def test_a_git_list_keeps_only_what_may_be_opened(project: Path) -> None:
    found = ProjectPaths(project).select(project, ["pkg/core.py", "pkg/alias.py", "pkg/link.py",
                                                   "pkg/dangling.py", "pkg/loop.py", "pkg/deleted.py"])
    assert found.paths == ("pkg/core.py", "pkg/alias.py", "pkg/deleted.py")
    assert [r.path for r in found.refused] == ["pkg/link.py", "pkg/dangling.py", "pkg/loop.py"]


def test_a_copy_holds_nothing_from_outside_and_ends(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=ProjectPaths(project).copy_filter())
    copied = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
    assert copied == ["pkg", "pkg/alias.py", "pkg/core.py"]
    assert not any(os.path.islink(copy / p) for p in copied)
