"""Writing a report file: atomic, and with the mode a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Iterator

import pytest

from readiness.scaffold import write_config
from reports.writer import write_text

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_gets_0644_under_umask_022(tmp_path: Path, umask) -> None:
    umask(0o022)
    path = write_text("report\n", tmp_path / "out" / "report.html")
    assert path is not None and path.read_text() == "report\n"
    assert oct(_mode(path)) == oct(0o644)


def test_a_stricter_umask_is_respected(tmp_path: Path, umask) -> None:
    umask(0o077)
    assert oct(_mode(write_text("x", tmp_path / "report.md"))) == oct(0o600)


def test_replacing_a_file_keeps_its_mode(tmp_path: Path, umask) -> None:
    umask(0o022)
    target = tmp_path / "junit.xml"
    target.write_text("old")
    target.chmod(0o640)
    write_text("new", target)
    assert target.read_text() == "new" and oct(_mode(target)) == oct(0o640)


def test_no_temporary_file_is_left_behind(tmp_path: Path, umask) -> None:
    write_text("a", tmp_path / "assessment.json")
    write_text("b", tmp_path / "assessment.json")
    assert [p.name for p in tmp_path.iterdir()] == ["assessment.json"]


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path: Path, umask) -> None:
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        write_text("\ud800", tmp_path / "report.md")
    assert list(tmp_path.iterdir()) == []


def test_config_written_by_init_gets_0644_under_umask_022(tmp_path: Path, umask) -> None:
    umask(0o022)
    path = write_config(tmp_path / "readiness.toml").path
    assert oct(_mode(path)) == oct(0o644)
