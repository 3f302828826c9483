"""Which gates run: `enable`, the sections present, `skip`, `--gate`, `--skip`, settings checked once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.engine import registry
from readiness import config, selection
from readiness.config import ConfigError
from readiness.selection import Partial, Request, select
from tests.fixtures import core_gates


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(registry, "BUILTIN", dict(core_gates.GATES))
    return tmp_path


def _load(root: Path, text: str = "") -> config.LoadedConfig:
    (root / "readiness.toml").write_text(text, encoding="utf-8")
    return config.load(root / "readiness.toml")


def test_a_full_run_chooses_every_gate_and_is_not_partial(root: Path) -> None:
    chosen = select(_load(root), Request())
    assert chosen.chosen == ("file_gate", "dependent_gate") and chosen.off == {} and chosen.partial is None
    assert chosen.settings["file_gate"] == core_gates.FileSettings()


def test_gate_brings_what_it_needs_and_the_rest_is_off_and_partial(root: Path) -> None:
    chosen = select(_load(root), Request(only=("dependent_gate",)))
    assert chosen.chosen == ("file_gate", "dependent_gate")  # its need joins
    only = select(_load(root), Request(only=("file_gate",)))
    assert only.chosen == ("file_gate",) and only.off == {"dependent_gate": "not selected with --gate"}
    assert only.partial == Partial(ran=("file_gate",), left_out=("dependent_gate",), request="--gate file_gate")


def test_skip_in_the_configuration_is_not_partial_but_skip_on_the_command_line_is(root: Path) -> None:
    configured = select(_load(root, "skip = ['dependent_gate']\n"), Request())
    assert configured.off == {"dependent_gate": "listed in `skip`"} and configured.partial is None
    typed = select(_load(root), Request(skip=("dependent_gate",)))
    assert typed.off == {"dependent_gate": "with --skip"}
    assert typed.partial is not None and typed.partial.left_out == ("dependent_gate",)


def test_a_gate_named_with_gate_but_listed_in_skip_stays_off(root: Path) -> None:
    chosen = select(_load(root, "skip = ['file_gate']\n"), Request(only=("file_gate",)))
    assert chosen.chosen == () and chosen.off["file_gate"] == "listed in `skip`"


def test_enable_turns_on_only_what_it_lists(root: Path) -> None:
    chosen = select(_load(root, "enable = ['file_gate']\n"), Request())
    assert chosen.chosen == ("file_gate",)
    assert chosen.off == {"dependent_gate": "not in `enable` in the configuration"}


def test_an_unknown_gate_on_the_command_line_gets_the_nearest_name(root: Path) -> None:
    with pytest.raises(ConfigError, match="--gate file_gat: unknown gate 'file_gat'; did you mean 'file_gate'"):
        select(_load(root), Request(only=("file_gat",)))


def test_an_override_for_a_gate_outside_the_run_is_refused(root: Path) -> None:
    with pytest.raises(ConfigError, match="--set dependent_gate.path=…: gate 'dependent_gate' is not part of this run"):
        select(_load(root), Request(only=("file_gate",), overrides={"dependent_gate": {"path": "x.json"}}))


def test_an_override_replaces_the_tables_value(root: Path) -> None:
    loaded = _load(root, "[gates.file_gate]\npath = 'a.json'\n")
    assert select(loaded, Request()).settings["file_gate"].path == "a.json"
    chosen = select(loaded, Request(overrides={"file_gate": {"path": "b.json"}}))
    assert chosen.settings["file_gate"].path == "b.json"


def test_every_settings_table_is_validated_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = config.gate_settings

    def counting(settings_type: type, table: dict, gate: str, source: str) -> object:
        calls.append(gate)
        return real(settings_type, table, gate, source)

    monkeypatch.setattr(config, "gate_settings", counting)
    select(_load(root, "[gates.file_gate]\npath = 'a.json'\n"), Request())
    assert sorted(calls) == ["dependent_gate", "file_gate"]  # the table once, the other gate's defaults once


def test_a_bad_table_of_a_gate_that_will_not_run_is_still_refused(root: Path) -> None:
    loaded = _load(root, "skip = ['dependent_gate']\n[gates.dependent_gate]\npaht = 'x'\n")
    with pytest.raises(ConfigError, match="unknown key 'gates.dependent_gate.paht'; did you mean 'path'"):
        select(loaded, Request())


def test_parse_override_reads_toml_values_and_names_the_bad_form() -> None:
    assert selection.parse_override("mutation.sample=50") == ("mutation", "sample", 50)
    assert selection.parse_override("parity.runtime=mil") == ("parity", "runtime", "mil")
    with pytest.raises(ConfigError, match="--set 'mutation': expected GATE.KEY=VALUE"):
        selection.parse_override("mutation")
