"""Bad configurations, as a user meets them: `readiness assess` in a subprocess.

One row per corpus file under corpus/config/. Every row must be refused
before any gate runs: exit 2, one `readiness:` line naming readiness.toml,
the key and the problem, no traceback, and nothing written (no report
folder, no `.readiness/` work or cache folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.badinput.project import CORPUS, assert_no_traceback, assert_refused, write_config

GOOD_JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="1"><testcase classname="tests.test_mod" name="test_ok" time="0.01"/>
</testsuite></testsuites>
"""


@dataclass(frozen=True)
class Row:
    name: str
    fragments: tuple[str, ...]
    bug: str = ""
    subprocess: bool = False


ROWS = [
    Row("wrong_type", ("fail_under = 'high'", "valid number"), subprocess=True),
    Row("unknown_key", ("unknown key 'fail_undr'", "did you mean 'fail_under'")),
    Row("unknown_nested_key", ("unknown key 'model.lenghts'", "did you mean 'lengths'")),
    Row("negative_weight", ("components.tests.weight = -1.0", "greater than or equal to 0")),
    Row("threshold_out_of_range", ("fail_under = 150", "less than or equal to 100")),
    Row("tier_out_of_range", ("tiers.1.line_pct = 120",)),
    Row("jobs_zero", ("jobs = 0",)),
    Row("root_escapes", ("code.root = '..'", "escapes the project folder")),
    Row("source_escapes", ("code.sources = '../../etc'", "escapes the code root"), subprocess=True),
    Row("critical_escapes", ("code.critical.path = '/etc/passwd'", "escapes the code root")),
    Row("not_toml", ("not valid TOML", "line 2")),
    Row("unknown_gate_table", ("unknown gate 'suite_healt'",)),
    Row("gate_unknown_setting", ("unknown key 'gates.suite_health.timeout'", "did you mean 'timeout_s'")),
    Row("gate_wrong_type", ("gates.suite_health.min_pass_pct = 'all'",)),
    Row("primary_not_enumerated", ("model.primary_length = 100", "must be one of model.lengths")),
    Row("gate_threshold_out_of_range", ("gates.suite_health.min_pass_pct = 150",)),
    Row("negative_timeout", ("timeouts.suite_health = -5",)),
    Row("work_dir_escapes", ("work_dir = '../outside-work'", "escapes the project folder")),
    Row("skip_unknown_gate", ("skip", "unknown gate 'suite_helth'")),
    Row("component_unknown_gate", ("unknown gate 'suite_helth'",)),
    Row("weights_add_to_zero", ("components", "add up to 0")),
    Row("source_missing", ("code.sources = 'my_package': no such file or folder",), subprocess=True),
    Row("tests_missing", ("code.tests = 'tests/unit': no such file or folder",)),
    Row("checkpoint_missing", ("model.checkpoint = 'checkpoints/student.safetensors': no such file or folder",)),
    Row("junit_missing", ("code.junit_xml = 'build/junit.xml': no such file or folder",)),
]


def _project(tmp_path: Path, toml: str | bytes) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "mod.py").write_text("def f():\n    return 1\n")
    (root / "tests").mkdir()
    (root / "junit.xml").write_text(GOOD_JUNIT)
    if isinstance(toml, bytes):
        (root / "readiness.toml").write_bytes(toml)
    else:
        write_config(root, toml)
    return root


def _param(row: Row):
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {row.bug}")] if row.bug else []
    return pytest.param(row, id=row.name, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_configuration_is_refused_before_any_gate_runs(row: Row, tmp_path: Path, cli) -> None:
    root = _project(tmp_path, (CORPUS / "config" / f"{row.name}.toml").read_text(encoding="utf-8"))
    proc = cli(["assess", "--gate", "suite_health", "-o", "out", "-f", "json"], root, in_subprocess=row.subprocess)
    assert_refused(proc, "readiness.toml", *row.fragments)
    assert not (root / "out").exists(), "a report was written for a refused configuration"
    assert not (root / ".readiness").exists(), "gates ran before the configuration was refused"


def test_configuration_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path, cli) -> None:
    root = _project(tmp_path, b"fail_under = 80\nproject = \"\xff\xfe\"\n")
    proc = cli(["assess", "-o", "out"], root)
    assert_refused(proc, "readiness.toml", "not valid TOML")


def test_selecting_a_code_gate_without_a_code_section_is_a_gate_error_saying_so(tmp_path: Path, cli) -> None:
    root = _project(tmp_path, "fail_under = 80\n")
    proc = cli(["assess", "--gate", "suite_health", "-o", "out", "-f", "json"], root)
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-3000:]
    gates = {g["name"]: g for g in json.loads((root / "out" / "assessment.json").read_text())["gates"]}
    assert gates["suite_health"]["status"] == "error"
    assert "no [code] section" in gates["suite_health"]["summary"]


def test_every_corpus_file_has_a_row() -> None:
    files = {p.stem for p in (CORPUS / "config").glob("*.toml")}
    assert files == {r.name for r in ROWS}


PYPROJECT_ROWS = [
    Row("unknown_key", ("unknown key 'tool.readiness.fail_undr'", "did you mean 'fail_under'")),
    Row("readiness_not_a_table", ("tool.readiness = [1, 2]: must be a table",)),
    Row("tool_not_a_table", ("tool = 5: must be a table",)),
]


@pytest.mark.parametrize("row", [_param(r) for r in PYPROJECT_ROWS])
def test_bad_pyproject_configuration_is_refused_naming_pyproject(row: Row, tmp_path: Path, cli) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text((CORPUS / "pyproject" / f"{row.name}.toml").read_text(encoding="utf-8"))
    proc = cli(["assess", "-c", "pyproject.toml", "-o", "out", "-f", "json"], root)
    assert_refused(proc, "pyproject.toml", *row.fragments)
    assert not (root / ".readiness").exists()


@pytest.mark.parametrize("row", [_param(r) for r in PYPROJECT_ROWS if r.name != "unknown_key"])
def test_a_pyproject_tool_that_is_not_a_table_is_refused_without_config_option(row: Row, tmp_path: Path,
                                                                               cli) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text((CORPUS / "pyproject" / f"{row.name}.toml").read_text(encoding="utf-8"))
    proc = cli(["assess", "-o", "out", "-f", "json"], root)
    assert_refused(proc, "pyproject.toml", *row.fragments)
    assert not (root / ".readiness").exists()
