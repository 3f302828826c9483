"""The environment gate: versions within windows, known breaks named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ProjectSpec
from gates.model.environment import EnvironmentGate, Settings, judge, judge_rows, known_breaks, within
from gates.result import Status


def run(settings: Settings, tmp_path: Path):
    ctx = GateContext(spec=ProjectSpec(name="env", root=tmp_path), settings=settings, work_dir=tmp_path)
    return EnvironmentGate().check(ctx)


def test_this_environment_passes_the_default_windows(tmp_path: Path) -> None:
    result = run(Settings(), tmp_path)
    assert result.status is Status.PASS, result.summary
    assert result.metrics["components_checked"] == 4
    assert result.metrics["components_ok_pct"] == 100.0
    assert result.metrics["torch_version"].startswith("2.")
    assert result.evidence["tables"][0]["rows"]


def test_a_package_outside_its_window_fails_naming_it(tmp_path: Path) -> None:
    result = run(Settings(packages={"torch": ">=3.0", "numpy": ">=1"}), tmp_path)
    assert result.status is Status.FAIL
    assert "torch" in result.summary
    assert result.metrics["components_ok"] == 2


def test_a_missing_package_fails(tmp_path: Path) -> None:
    result = run(Settings(packages={"surely-not-installed-pkg": ">=1"}), tmp_path)
    assert result.status is Status.FAIL
    assert "not installed" in result.evidence["failures"][0]["detail"]


def test_python_outside_its_window_fails(tmp_path: Path) -> None:
    result = run(Settings(python="<3.0", packages={}), tmp_path)
    assert result.status is Status.FAIL and "python" in result.summary


def test_coremltools_9_with_numpy_2_4_is_named_as_a_known_break() -> None:
    hits = known_breaks({"coremltools": "9.0", "numpy": "2.4.1"})
    assert len(hits) == 1 and "coremltools 9.0 + numpy 2.4.1" in hits[0]
    assert known_breaks({"coremltools": "9.0", "numpy": "2.3.5"}) == []
    assert known_breaks({"coremltools": "8.3", "numpy": "2.4.1"}) == []


def test_a_known_break_fails_even_inside_wide_windows() -> None:
    settings = Settings(packages={"coremltools": ">=8", "numpy": ">=1"})
    versions = {"coremltools": "9.0", "numpy": "2.4.0"}
    rows = judge_rows("3.11.7", versions, settings)
    assert all(r.ok for r in rows)
    status, _, summary = judge(rows, known_breaks(versions))
    assert status is Status.FAIL and "coremltools 9.0 + numpy 2.4.0" in summary


def test_local_version_tags_are_ignored() -> None:
    assert within("2.13.0+cpu", ">=2.5,<2.14")
    assert not within("2.14.0+cu121", ">=2.5,<2.14")


def test_a_bad_window_in_settings_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="not a version specifier"):
        run(Settings(python="about three"), tmp_path)


def test_settings_are_frozen_plain_values() -> None:
    assert dataclasses.is_dataclass(Settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().python = "x"  # type: ignore[misc]
