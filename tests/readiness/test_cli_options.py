"""Command-line options: checked before anything runs, in the user's own words, and documented.

A usage mistake is exit 2 with one line that speaks of what the user typed,
and nothing runs (no partial result, no work folder). A single-gate run runs
what the gate needs and what it reads, so `readiness gate coverage` and
`readiness gate mutation --mutants 50` measure on a project with failing tests.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gates.engine import registry
from readiness import cli
from readiness.cli import main
from tests.gates.code.quality_projects import QUALITY


@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seeded project whose suite has failing tests (tests/fixtures/quality/failing)."""
    root = tmp_path / "failing"
    shutil.copytree(QUALITY / "failing", root, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "readiness.toml").open("a") as handle:
        handle.write("\n[history]\nenabled = false\n")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("argv,line", [
    (["gate", "hygiene", "--runtime", "onnx"],
     "--runtime applies to `readiness gate parity` or `readiness gate performance` only, "
     "not to `readiness gate hygiene`"),
    (["gate", "parity", "--runtime", "bogus"],
     "--runtime bogus: unknown runtime (choose from auto, coreml, mil, onnx)"),
    (["gate", "performance", "--runtime", "mil"],
     "--runtime mil: unknown runtime (choose from auto, onnx, coreml)"),
    (["gate", "mutation", "--shard", "5/2"], "--shard 5/2: expected I/N with 1 <= I <= N, e.g. 2/4"),
    (["gate", "hygiene", "--shard", "1/2"], "--shard applies to `readiness gate mutation` or "
                                            "`readiness gate suite_health` only, not to `readiness gate hygiene`"),
    (["gate", "coverage", "--mutants", "5"],
     "--mutants applies to `readiness gate mutation` only, not to `readiness gate coverage`"),
    (["assess", "--set", "mutaton.sample=5"],
     "--set mutaton.sample=5: unknown gate 'mutaton'; did you mean 'mutation'?"),
    (["gate", "mutation", "--set", "mutation.sampel=5"],
     "--set mutation.sampel=5: gate mutation has no setting 'sampel'; did you mean 'sample'?"),
    (["gate", "mutaton"], "readiness gate mutaton: unknown gate 'mutaton'; did you mean 'mutation'?"),
    (["assess", "--gate", "coverag"], "--gate coverag: unknown gate 'coverag'; did you mean 'coverage'?"),
    (["assess", "--skip", "mutation", "--set", "mutation.sample=5"],
     "--set mutation.sample=…: gate 'mutation' is not part of this run"),
], ids=["runtime-other-gate", "runtime-bogus", "performance-runtime-bogus", "shard", "shard-other-gate",
        "mutants-other-gate", "set-gate-typo", "set-key-typo", "gate-typo", "gate-option-typo", "set-gate-not-run"])
def test_usage_mistakes_are_one_line_before_anything_runs(failing: Path, capsys: pytest.CaptureFixture,
                                                          argv: list[str], line: str) -> None:
    assert main([*argv, "-o", "out"] if argv[0] == "assess" else argv) == 2
    assert capsys.readouterr().err.splitlines() == [f"readiness: {line}"]
    assert not (failing / ".readiness").exists() and not (failing / "out").exists()
    assert not list(failing.glob("readiness-gate-*.json"))


def _gate_doc(root: Path, name: str) -> dict[str, dict]:
    doc = json.loads((root / f"readiness-gate-{name}.json").read_text())
    return {g["name"]: g for g in doc["gates"]}


def test_gate_coverage_runs_suite_health_first_and_measures(failing: Path) -> None:
    assert main(["gate", "coverage"]) == 0
    gates = _gate_doc(failing, "coverage")
    assert gates["suite_health"]["status"] == "fail"  # it ran: the fixture has failing tests
    assert gates["coverage"]["status"] == "pass", gates["coverage"]["summary"]
    assert gates["coverage"]["metrics"]["line_pct"] == 100.0


def test_gate_mutation_deselects_the_failing_tests_suite_health_found(failing: Path) -> None:
    assert main(["gate", "mutation", "--mutants", "50"]) == 1  # calc's tests kill too few mutants
    gates = _gate_doc(failing, "mutation")
    assert gates["suite_health"]["status"] == "fail"
    mutation = gates["mutation"]
    assert mutation["status"] == "fail", mutation["summary"]  # measured, not an error
    assert "tests/unit/test_wrong.py::test_mean_is_wrong" in mutation["evidence"]["deselected_tests"]
    assert mutation["metrics"]["killed"] > 0


def test_a_gate_read_but_turned_off_by_the_configuration_is_not_run(failing: Path) -> None:
    text = (failing / "readiness.toml").read_text()
    (failing / "readiness.toml").write_text("skip = ['suite_health']\n" + text)
    assert main(["gate", "coverage"]) == 1
    gates = _gate_doc(failing, "coverage")
    assert gates["suite_health"]["summary"] == "turned off: listed in `skip`"
    assert "Run suite_health (or set code.coverage_data) first." in gates["coverage"]["remediation"]


# --- help ----------------------------------------------------------------------------------------

def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if hasattr(command, "commands"):  # a group (typer vendors its own click)
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def _all_commands() -> list[tuple[tuple[str, ...], Any]]:
    cli._register_plugins()
    return _commands(typer.main.get_command(cli.app))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli.app, [*path, "--help"], env={"COLUMNS": "3000"},
                                max_content_width=3000, terminal_width=3000)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_option_of_every_command_has_help_shown_verbatim() -> None:
    commands = _all_commands()
    assert {"assess", "gate", "init", "report", "merge", "demo", "history", "diff"} <= {p[0] for p, _ in commands if p}
    for path, command in commands:
        shown = " ".join(_help(path).split())
        for param in command.params:
            text = getattr(param, "help", None) or ""
            assert text.strip(), f"readiness {' '.join(path)}: {param.name} has no help"
            # brackets such as [mlflow] must survive: nothing is read as markup
            assert " ".join(text.split()) in shown, f"readiness {' '.join(path)}: help of {param.name} altered"
        assert "<bool>" not in shown, f"readiness {' '.join(path)} shows a value for a flag"


def test_mlflow_help_names_its_table() -> None:
    assert "Log the assessment to MLflow ([mlflow] in the config)." in _help(("assess",))


def test_gate_help_lists_the_gate_names() -> None:
    for path in (("assess",), ("gate",)):
        shown = " ".join(_help(path).split())
        assert all(name in shown for name in registry.BUILTIN), path


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"readiness {version('readiness')}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version("readiness"))


def _readme_usage_commands() -> list[list[str]]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Using it on your project", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        for part in line.split("#", 1)[0].split(" | "):
            words = shlex.split(part)
            assert words[0] == "readiness", line
            commands.append(words[1:])
    return commands


def test_the_readme_usage_block_names_only_commands_and_options_that_exist() -> None:
    """Each line parses as the CLI would parse it (nothing runs); the init and
    `gate mutation --mutants 50` lines are run by test_init.py and the test above."""
    commands = _readme_usage_commands()
    assert ["init"] in commands and ["gate", "mutation", "--mutants", "50"] in commands
    cli._register_plugins()
    group = typer.main.get_command(cli.app)
    for words in commands:
        command, args = group, list(words)
        while hasattr(command, "commands"):
            name, args = args[0], args[1:]
            assert name in command.commands, words
            command = command.commands[name]
        command.make_context(words[0], args)  # raises on an unknown option or a missing argument
