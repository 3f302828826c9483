"""`readiness init` writes what it finds, and `readiness assess` then runs on it.

Each project layout a user starts from (nothing, a flat package with tests,
a src layout, a folder holding a checkpoint) is surveyed by `init`; the
configuration it writes must load and `assess` must run its gates on it
rather than stop on a path that does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from readiness import config
from readiness.cli import main
from tests.gates.code.quality_projects import QUALITY


def _init(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(root)
    return main(["init", *args])


def _assess(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, dict]:
    monkeypatch.chdir(root)
    code = main(["assess", "--no-history", "-o", "out", "-f", "json", *args])
    return code, json.loads((root / "out" / "assessment.json").read_text())


def _statuses(doc: dict) -> dict[str, str]:
    return {g["name"]: g["status"] for g in doc["gates"]}


def _flat_project(tmp_path: Path) -> Path:
    root = tmp_path / "flat"
    shutil.copytree(QUALITY / "healthy", root, ignore=shutil.ignore_patterns("readiness.toml", "__pycache__"))
    return root


def _src_project(tmp_path: Path) -> Path:
    root = tmp_path / "srcproj"
    shutil.copytree(QUALITY / "healthy" / "calc", root / "src" / "calc")
    shutil.copytree(QUALITY / "healthy" / "tests", root / "tests")
    (root / "pytest.ini").write_text("[pytest]\npythonpath = src\n")
    return root


def test_init_in_an_empty_folder_configures_nothing_that_does_not_exist(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    assert _init(tmp_path, monkeypatch) == 0
    raw = tomllib.loads((tmp_path / "readiness.toml").read_text())
    assert "model" not in raw and "code" not in raw
    assert "No package found" in capsys.readouterr().err
    code, doc = _assess(tmp_path, monkeypatch)
    assert code == 1  # nothing to assess is no ship, but not a configuration error
    assert set(_statuses(doc).values()) == {"off"}


def test_init_on_a_flat_package_with_tests_writes_them_and_assess_runs_the_code_gates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _flat_project(tmp_path)
    assert _init(root, monkeypatch) == 0
    raw = tomllib.loads((root / "readiness.toml").read_text())
    assert raw["code"]["sources"] == ["calc"] and raw["code"]["tests"] == ["tests"]
    assert "model" not in raw
    code, doc = _assess(root, monkeypatch, "--skip", "mutation")
    statuses = _statuses(doc)
    assert statuses["suite_health"] == statuses["coverage"] == statuses["hygiene"] == "pass", doc["gates"]
    assert code == 0


def test_init_on_a_src_layout_names_the_package_under_src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _src_project(tmp_path)
    assert _init(root, monkeypatch) == 0
    raw = tomllib.loads((root / "readiness.toml").read_text())
    assert raw["code"]["sources"] == ["src/calc"] and raw["code"]["tests"] == ["tests"]
    code, doc = _assess(root, monkeypatch, "--gate", "coverage")
    assert _statuses(doc)["suite_health"] == "pass"
    coverage = next(g for g in doc["gates"] if g["name"] == "coverage")
    assert coverage["status"] == "pass" and coverage["metrics"]["line_pct"] == 100.0, coverage


def test_init_finds_a_readiness_checkpoint_and_its_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.models import demo

    assets = demo()
    (tmp_path / "weights").mkdir()
    shutil.copy(assets.checkpoint, tmp_path / "weights" / "distilled.safetensors")
    shutil.copy(assets.tokenizer, tmp_path / "weights" / "tokenizer.json")
    (tmp_path / "weights" / "another.safetensors").write_bytes(b"not a checkpoint of ours")
    assert _init(tmp_path, monkeypatch) == 0
    model = tomllib.loads((tmp_path / "readiness.toml").read_text())["model"]
    assert model["adapter"] == "builtin:student"
    assert model["checkpoint"] == "weights/distilled.safetensors"
    assert model["tokenizer"] == "weights/tokenizer.json"
    code, doc = _assess(tmp_path, monkeypatch, "--gate", "checkpoint", "--gate", "tokenizer")
    statuses = _statuses(doc)
    assert statuses["checkpoint"] == statuses["tokenizer"] == "pass", doc["gates"]


def _hf_folder(root: Path) -> Path:
    folder = root / "hf" / "tiny-llama"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 256}))
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def test_a_hugging_face_folder_is_named_as_the_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    _hf_folder(tmp_path)
    assert _init(tmp_path, monkeypatch) == 0
    loaded = config.load(tmp_path / "readiness.toml")
    model = loaded.config.model
    assert model is not None and model.adapter == "hf:hf/tiny-llama" and model.checkpoint is None
    assert model.tokenizer == "hf/tiny-llama/tokenizer.json"  # the folder's own, filled in at load
    assert "tokenizer" not in tomllib.loads((tmp_path / "readiness.toml").read_text())["model"]
    assert model.lengths == [64, 128] and model.primary_length == 128  # tables of 256 rows: shorter prompts
    assert 'adapter = "hf:hf/tiny-llama"' in capsys.readouterr().err


def test_model_option_writes_the_model_table_with_what_was_found(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _hf_folder(tmp_path)
    assert _init(tmp_path, monkeypatch, "--model", "my_models.llama:build") == 0
    loaded = config.load(tmp_path / "readiness.toml")
    model = loaded.config.model
    assert model is not None and model.adapter == "my_models.llama:build"
    assert (model.checkpoint, model.tokenizer) == ("hf/tiny-llama", "hf/tiny-llama/tokenizer.json")
    assert model.lengths == [64, 128, 256] and model.primary_length == 128  # max_position_embeddings 256


def test_builtin_model_without_a_checkpoint_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert _init(tmp_path, monkeypatch, "--model", "builtin:student") == 2
    assert "no Readiness checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "readiness.toml").exists()


def test_readiness_toml_gets_the_permissions_of_any_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o022)
    try:
        assert _init(tmp_path, monkeypatch) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "readiness.toml").stat().st_mode) == 0o644


PYPROJECT = b'[project]\nname = "calc"\n\n[tool.black]\nline-length = 100\n# the last line has no newline'


def test_init_pyproject_appends_tool_readiness_and_keeps_every_byte(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = _flat_project(tmp_path)
    (root / "pyproject.toml").write_bytes(PYPROJECT)
    (root / "pyproject.toml").chmod(0o640)
    assert _init(root, monkeypatch, "pyproject.toml") == 0
    data = (root / "pyproject.toml").read_bytes()
    assert data.startswith(PYPROJECT)
    document = tomllib.loads(data.decode())
    assert document["project"] == {"name": "calc"} and document["tool"]["black"] == {"line-length": 100}
    assert set(document) == {"project", "tool"}  # nothing written at the top level
    assert stat.S_IMODE((root / "pyproject.toml").stat().st_mode) == 0o640
    loaded = config.load(start=root)
    assert loaded.path == root / "pyproject.toml"
    assert loaded.config.code is not None and loaded.config.code.sources == ["calc"]
    code, doc = _assess(root, monkeypatch, "--gate", "hygiene")
    assert _statuses(doc)["hygiene"] == "pass" and code == 0


@pytest.mark.parametrize("force", [False, True])
def test_init_never_rewrites_an_existing_tool_readiness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture, force: bool) -> None:
    original = PYPROJECT + b"\n[tool.readiness]\nfail_under = 70\n"
    (tmp_path / "pyproject.toml").write_bytes(original)
    assert _init(tmp_path, monkeypatch, "pyproject.toml", *(["--force"] if force else [])) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml: already has [tool.readiness]" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "pyproject.toml").read_bytes() == original


def test_init_refuses_a_pyproject_whose_tool_is_not_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 5\n")
    assert _init(tmp_path, monkeypatch, "pyproject.toml") == 2
    assert "tool = 5: must be a table" in capsys.readouterr().err
    assert (tmp_path / "pyproject.toml").read_text() == "tool = 5\n"


def test_readiness_toml_is_replaced_only_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "readiness.toml").write_text("fail_under = 70\n")
    assert _init(tmp_path, monkeypatch) == 2
    assert (tmp_path / "readiness.toml").read_text() == "fail_under = 70\n"
    assert _init(tmp_path, monkeypatch, "--force") == 0
    assert config.load(tmp_path / "readiness.toml").config.fail_under == 80


def test_init_reads_nothing_outside_the_project_through_symlinks(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.models import demo

    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(demo().checkpoint, outside / "student.safetensors")
    (outside / "pkg").mkdir()
    (outside / "pkg" / "__init__.py").write_text("")
    root = tmp_path / "project"
    root.mkdir()
    (root / "weights").symlink_to(outside)
    (root / "student.safetensors").symlink_to(outside / "student.safetensors")
    (root / "pkg").symlink_to(outside / "pkg")
    assert _init(root, monkeypatch) == 0
    raw = tomllib.loads((root / "readiness.toml").read_text())
    assert "model" not in raw and "code" not in raw
