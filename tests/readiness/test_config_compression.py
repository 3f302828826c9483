"""`[model] compressions` and `stateful`: validated at load, passed to the model spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness import config
from readiness.selection import build_spec


def _load(tmp_path: Path, model: str) -> config.LoadedConfig:
    (tmp_path / "readiness.toml").write_text(f"[model]\n{model}\n", encoding="utf-8")
    return config.load(start=tmp_path)


def test_compressions_and_stateful_reach_the_model_spec(tmp_path: Path) -> None:
    loaded = _load(tmp_path, 'compressions = ["int4_block32", "palettize6"]\nstateful = ["fp16", "int4_block32"]')
    spec = build_spec(loaded)
    assert spec.model.compressions == ("int4_block32", "palettize6")
    assert spec.model.stateful == ("fp16", "int4_block32")


def test_an_unknown_compression_names_the_key_and_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"readiness.toml: model.compressions.0 = 'int3': Input should be "
                                                 r"'int8', 'int4_block32', 'palettize4', 'palettize6' or 'prune50'"):
        _load(tmp_path, 'compressions = ["int3"]')


def test_state_and_block_wise_int4_need_ios18(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"readiness.toml: model.stateful = \['fp16'\]: needs "
                                                 r"deployment_target = \"iOS18\" \(it is 'iOS17'\)"):
        _load(tmp_path, 'deployment_target = "iOS17"\nstateful = ["fp16"]')
    with pytest.raises(config.ConfigError, match=r"model.compressions = \['int4_block32'\]: "
                                                 r"needs deployment_target = \"iOS18\" \(it is 'iOS16'\)"):
        _load(tmp_path, 'deployment_target = "iOS16"\ncompressions = ["int4_block32"]')


def test_the_ios18_message_names_the_key_as_pyproject_spells_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.readiness.model]\ndeployment_target = "iOS17"\n'
                                             'stateful = ["fp16"]\n', encoding="utf-8")
    with pytest.raises(config.ConfigError, match=r"pyproject.toml: tool.readiness.model.stateful = \['fp16'\]: needs"):
        config.load(start=tmp_path)
