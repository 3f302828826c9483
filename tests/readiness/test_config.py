"""Configuration loading: one clear line per problem, naming file and key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from readiness import config


def _write(tmp_path: Path, text: str, name: str = "readiness.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    loaded = config.load(start=tmp_path)
    assert loaded.path is None and loaded.config.fail_under == 80.0


def test_pyproject_table_is_found_from_a_subfolder(tmp_path: Path) -> None:
    _write(tmp_path, "[tool.readiness]\nfail_under = 70\n[tool.readiness.code]\nsources = ['pkg']\n",
           "pyproject.toml")
    sub = tmp_path / "pkg"
    sub.mkdir()
    loaded = config.load(start=sub)
    assert loaded.config.fail_under == 70 and loaded.root == tmp_path.resolve()


def test_pyproject_without_readiness_table_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path, "[project]\nname = 'x'\n", "pyproject.toml")
    assert config.load(start=tmp_path).path is None


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = _write(tmp_path, "fail_undr = 70\n")
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message and "fail_undr" in message and "fail_under" in message


def test_nested_unknown_key_is_named_with_its_table(tmp_path: Path) -> None:
    path = _write(tmp_path, "[model]\nlenghts = [64]\n")
    with pytest.raises(config.ConfigError, match=r"model\.lenghts.*lengths"):
        config.load(path)


@pytest.mark.parametrize("text,fragment", [
    ("fail_under = 'high'\n", "fail_under = 'high'"),
    ("fail_under = 120\n", "less than or equal to 100"),
    ("profile = 'fast'\n", "'default' or 'distill'"),
    ("[components.a]\nweight = -1\ngates = ['x']\n", "components.a.weight = -1"),
    ("[tiers.1]\nline_pct = 150\nbranch_pct = 1\nmutation_pct = 1\n", "tiers.1.line_pct = 150"),
    ("[model]\nprecisions = ['int4']\n", "model.precisions.0 = 'int4'"),
])
def test_bad_values_name_key_value_and_what_is_allowed(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "fail_under = = 3\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(path)


@pytest.mark.parametrize("text", ["[code]\nroot = '../elsewhere'\n", "[code]\nsources = ['../../etc']\n",
                                  "[code]\ncritical = [{path = '/etc/passwd'}]\n"])
def test_paths_escaping_the_project_are_refused(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(config.ConfigError, match="escapes"):
        config.load(path)


@pytest.mark.parametrize("table, key", [("model", "checkpoint"), ("model", "tokenizer"),
                                        ("code", "junit_xml"), ("code", "coverage_data")])
def test_an_input_path_inside_that_links_outside_is_refused(tmp_path: Path, table: str, key: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "models").mkdir()
    (project / "weights").symlink_to("../models")
    path = _write(project, f"[{table}]\n{key} = 'weights/model.safetensors'\n")
    with pytest.raises(config.ConfigError, match=rf"{table}\.{key} = 'weights/model.safetensors': a link "
                                                 "inside the project that leads outside it"):
        config.load(path)


def test_a_model_path_named_outside_the_project_is_the_users_choice(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "models").mkdir()
    for value in ("../models/model.safetensors", str(tmp_path / "models" / "model.safetensors")):
        loaded = config.load(_write(project, f"[model]\ncheckpoint = '{value}'\n"))
        assert loaded.config.model.checkpoint == value


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
    atol: float = 1e-4
    lengths: tuple[int, ...] = (64,)


def test_gate_settings_are_typed_and_unknown_ones_suggested() -> None:
    settings = config.gate_settings(_Settings, {"atol": 1e-3, "lengths": [8, 16]}, "parity", "f.toml")
    assert settings == _Settings(atol=1e-3, lengths=(8, 16))
    with pytest.raises(config.ConfigError, match=r"gates\.parity\.atoll.*'atol'"):
        config.gate_settings(_Settings, {"atoll": 1}, "parity", "f.toml")
    with pytest.raises(config.ConfigError, match=r"gates\.parity\.atol = 'big'"):
        config.gate_settings(_Settings, {"atol": "big"}, "parity", "f.toml")
