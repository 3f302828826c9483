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
    (tmp_path / "models" / "model.safetensors").write_bytes(b"")  # configured paths must exist
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


@pytest.mark.parametrize("text,key,value", [
    ("[code]\nsources = ['my_package']\n", "code.sources", "my_package"),
    ("[code]\nsources = ['pkg']\ntests = ['tests/test_nope.py::test_x']\n", "code.tests", "tests/test_nope.py::test_x"),
    ("[code]\nsources = ['pkg']\ncritical = [{path = 'pkg/core.py'}]\n", "code.critical.path", "pkg/core.py"),
    ("[code]\nsources = ['pkg']\njunit_xml = 'build/junit.xml'\n", "code.junit_xml", "build/junit.xml"),
    ("[code]\nsources = ['pkg']\ncoverage_data = 'build/.coverage'\n", "code.coverage_data", "build/.coverage"),
    ("[code]\nroot = 'lib'\n", "code.root", "lib"),
    ("[code]\nsources = ['pkg']\ncritical = [{path = 'pkg/__init__.py', tests = ['tests/test_k.py::t']}]\n",
     "code.critical.tests", "tests/test_k.py::t"),
    ("[code]\nsources = ['pkg']\npython = '.venv/bin/python'\n", "code.python", ".venv/bin/python"),
    ("[model]\ncheckpoint = 'checkpoints/student.safetensors'\n", "model.checkpoint",
     "checkpoints/student.safetensors"),
    ("[model]\ncheckpoint = 'pkg/__init__.py'\ntokenizer = 'tok.json'\n", "model.tokenizer", "tok.json"),
], ids=["sources", "tests", "critical", "junit_xml", "coverage_data", "root", "critical_tests", "python",
        "checkpoint", "tokenizer"])
def test_a_configured_path_that_does_not_exist_names_key_and_path(tmp_path: Path, text: str, key: str,
                                                                  value: str) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    path = _write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} = {value!r}: no such file or folder")
    assert str(tmp_path / value.split("::")[0]) in message and "\n" not in message


def test_existing_paths_and_test_node_ids_load(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_x():\n    pass\n")
    path = _write(tmp_path, "[code]\nsources = ['pkg']\ntests = ['tests/test_a.py::test_x']\n")
    assert config.load(path).config.code.tests == ["tests/test_a.py::test_x"]


def test_the_project_interpreter_and_per_module_mutation_choices_reach_the_spec(tmp_path: Path) -> None:
    from readiness.selection import build_spec

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "core.py").write_text("")
    (tmp_path / "pkg" / "io.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_core.py").write_text("")
    path = _write(tmp_path, "[code]\nsources = ['pkg']\npython = 'python3.11'\ncritical = [\n"
                            "  {path = 'pkg/core.py', tests = ['tests/test_core.py']},\n"
                            "  {path = 'pkg/io.py', tier = '2', mutate = false},\n]\n")
    code = build_spec(config.load(path)).code
    assert code.python == "python3.11"
    assert [(m.path, m.tier, m.mutate, m.tests) for m in code.critical] == [
        ("pkg/core.py", "1", True, ("tests/test_core.py",)), ("pkg/io.py", "2", False, ())]


def test_the_default_tests_folder_is_not_required(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    path = _write(tmp_path, "[code]\nsources = ['pkg']\n")
    assert config.load(path).config.code.tests == ["tests"]


def test_missing_paths_in_pyproject_are_named_with_their_prefix(tmp_path: Path) -> None:
    _write(tmp_path, "[tool.readiness.code]\nsources = ['nope']\n", "pyproject.toml")
    with pytest.raises(config.ConfigError, match=r"tool\.readiness\.code\.sources = 'nope': no such file"):
        config.load(start=tmp_path)


@pytest.mark.parametrize("text,fragment", [
    ("tool = 5\n[project]\nname = 'x'\n", "tool = 5: must be a table"),
    ("[project]\nname = 'x'\n[tool]\nreadiness = 5\n", "tool.readiness = 5: must be a table"),
], ids=["tool", "tool.readiness"])
def test_a_pyproject_tool_that_is_not_a_table_is_refused_when_searched(tmp_path: Path, text: str,
                                                                       fragment: str) -> None:
    _write(tmp_path, text, "pyproject.toml")
    with pytest.raises(config.ConfigError, match=fragment):
        config.load(start=tmp_path)
