"""Bad artifacts, as a user meets them: `readiness assess` / `readiness report` in a subprocess.

One row per bad input. A broken checkpoint, JUnit file or coverage data file
is a finding of the gate that reads it (`fail` for a checkpoint that cannot
be loaded safely, `error` where the harness could not measure), so the run
exits 1 with the gate's one-line summary naming the file and the problem; a
broken assessment document given to `readiness report` exits 2 with one
`readiness:` line. Never a traceback, never a pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.badinput import artifacts
from tests.badinput.project import CORPUS, assert_no_traceback, assert_refused, gate_result, write_config


@dataclass(frozen=True)
class GateRow:
    name: str
    gate: str
    config: str
    make: Callable[[Path], None]
    status: str
    fragments: tuple[str, ...]
    file: str
    bug: str = ""
    absent: tuple[str, ...] = field(default=())  # files that must not exist afterwards
    subprocess: bool = False


def _copy(corpus: str, target: str) -> Callable[[Path], None]:
    return lambda root: (root / target).write_bytes((CORPUS / corpus).read_bytes())


def _ckpt(builder: Callable[[Path], Path], target: str = "model.safetensors") -> Callable[[Path], None]:
    return lambda root: builder(root / target)


def _unsafe_pt(root: Path) -> None:
    artifacts.unsafe_torch_file(root / "model.pt", root / "PWNED")


def _unsafe_legacy_pt(root: Path) -> None:
    (root / "model.pt").write_bytes(artifacts.unsafe_pickle_bytes(root / "PWNED"))


def _module(root: Path) -> Path:
    path = root / "src" / "mod.py"
    path.write_text("x = 1\ny = 2\n")
    return path


def _cov_other_project(root: Path) -> None:
    other = root.parent / "other_project" / "mod.py"
    other.parent.mkdir()
    other.write_text("x = 1\ny = 2\n")
    artifacts.coverage_file(root / "cov.data", {other: artifacts.MODULE_ARCS})


def _cov_no_branches(root: Path) -> None:
    artifacts.coverage_file(root / "cov.data", {_module(root): artifacts.MODULE_ARCS}, arcs=False)


def _cov_deleted_source(root: Path) -> None:
    artifacts.coverage_file(root / "cov.data", {root / "src" / "gone.py": artifacts.MODULE_ARCS})


def _cov_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / "cov.data").write_bytes(data)


CKPT = '[model]\ncheckpoint = "model.safetensors"\n'
PT = '[model]\ncheckpoint = "model.pt"\n'
JUNIT = '[code]\nsources = ["src"]\njunit_xml = "junit.xml"\n'
COV = '[code]\nsources = ["src"]\ncoverage_data = "cov.data"\n'

GATE_ROWS = [
    GateRow("safetensors_truncated", "checkpoint", CKPT, _ckpt(artifacts.truncated_checkpoint), "fail",
            ("not a readable safetensors file",), "model.safetensors"),
    GateRow("safetensors_garbage", "checkpoint", CKPT, _ckpt(artifacts.garbage_checkpoint), "fail",
            ("not a readable safetensors file",), "model.safetensors"),
    GateRow("safetensors_bad_metadata", "checkpoint", CKPT, _ckpt(artifacts.bad_metadata_checkpoint), "fail",
            ("metadata is not valid JSON",), "model.safetensors"),
    GateRow("arch_metadata_missing_fields", "checkpoint", CKPT, _ckpt(artifacts.tiny_checkpoint), "fail",
            ("model_arch lacks",), "model.safetensors"),
    GateRow("pt_unsafe_pickle", "checkpoint", PT, _unsafe_pt, "fail",
            ("refused, unpickling it would need code execution",), "model.pt", absent=("PWNED",),
            subprocess=True),
    GateRow("pt_unsafe_legacy_pickle", "checkpoint", PT, _unsafe_legacy_pt, "fail",
            ("refused, unpickling it would need code execution",), "model.pt", absent=("PWNED",)),
    GateRow("junit_malformed", "suite_health", JUNIT, _copy("junit/malformed.xml", "junit.xml"), "error",
            ("is malformed",), "junit.xml"),
    GateRow("junit_empty", "suite_health", JUNIT, _copy("junit/empty.xml", "junit.xml"), "error",
            ("is malformed",), "junit.xml"),
    GateRow("junit_billion_laughs", "suite_health", JUNIT, _copy("junit/billion_laughs.xml", "junit.xml"),
            "error", ("refused as unsafe",), "junit.xml", subprocess=True),
    GateRow("junit_external_entity", "suite_health", JUNIT, _copy("junit/external_entity.xml", "junit.xml"),
            "error", ("refused as unsafe",), "junit.xml"),
    GateRow("junit_wrong_root", "suite_health", JUNIT, _copy("junit/wrong_root.xml", "junit.xml"), "error",
            ("has root <html>",), "junit.xml"),
    GateRow("junit_no_testcases", "suite_health", JUNIT, _copy("junit/no_testcases.xml", "junit.xml"), "error",
            ("no tests",), ""),
    GateRow("junit_bad_time", "suite_health", JUNIT, _copy("junit/bad_time.xml", "junit.xml"), "error",
            ("has a time of 'fast', not a number",), "junit.xml"),
    GateRow("coverage_corrupt", "coverage", COV, _cov_bytes(b"\x00not sqlite" * 50), "error",
            ("could not be read",), "cov.data"),
    GateRow("coverage_empty", "coverage", COV, _cov_bytes(b""), "error", ("measured no files",), "cov.data"),
    GateRow("coverage_other_project", "coverage", COV, _cov_other_project, "error",
            ("is from another project",), "cov.data", subprocess=True),
    GateRow("coverage_no_branch_data", "coverage", COV, _cov_no_branches, "error",
            ("has no branch data",), "cov.data"),
    GateRow("coverage_source_deleted", "coverage", COV, _cov_deleted_source, "error",
            ("is stale", "gone.py"), "cov.data"),
]


def _param(row):
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {row.bug}")] if row.bug else []
    return pytest.param(row, id=row.name, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in GATE_ROWS])
def test_bad_artifact_is_a_gate_finding_naming_the_file(row: GateRow, tmp_path: Path, cli) -> None:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    write_config(root, row.config)
    row.make(root)
    proc = cli(["assess", "--gate", row.gate, "-o", "out", "-f", "json"], root, in_subprocess=row.subprocess)
    assert_no_traceback(proc)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    result = gate_result(root / "out", row.gate)
    assert result["status"] == row.status, result["summary"]
    assert "\n" not in result["summary"]
    assert row.file in result["summary"], f"{row.file!r} not named in {result['summary']!r}"
    for fragment in row.fragments:
        assert fragment in result["summary"]
    for name in row.absent:
        assert not (root / name).exists(), f"{name} appeared: loading the checkpoint ran its code"


DOCUMENT_ROWS = [
    ("truncated", ("not valid JSON",)),
    ("empty", ("not valid JSON",)),
    ("not_utf8", ("not UTF-8 text",)),
    ("not_an_object", ("not an assessment document",)),
    ("newer_version", ("schema_version 4 is newer", "upgrade readiness")),
    ("score_out_of_range", ("invalid assessment document at score",)),
    ("unknown_status", ("invalid assessment document at gates/0/status",)),
    ("missing_verdict", ("'verdict' is a required property",)),
]


@pytest.mark.parametrize(("name", "fragments"), DOCUMENT_ROWS, ids=[r[0] for r in DOCUMENT_ROWS])
def test_bad_assessment_document_is_refused_by_report(name: str, fragments: tuple[str, ...],
                                                      tmp_path: Path, cli) -> None:
    proc = cli(["report", str(CORPUS / "document" / f"{name}.json"), "-f", "html",
                "-o", str(tmp_path / "report.html")], tmp_path, in_subprocess=name == "newer_version")
    assert_refused(proc, f"{name}.json", *fragments)
    assert list(tmp_path.iterdir()) == [], "a report (or a temporary file) was left behind"


@pytest.mark.parametrize("name", ["valid", "odd_evidence", "odd_metrics"])
def test_documents_with_free_form_evidence_still_render_in_every_format(name: str, tmp_path: Path,
                                                                        cli) -> None:
    for fmt in ("html", "md", "junit"):
        out = tmp_path / f"report.{fmt}"
        proc = cli(["report", str(CORPUS / "document" / f"{name}.json"), "-f", fmt, "-o", str(out)], tmp_path)
        assert_no_traceback(proc)
        assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr[-2000:]


def test_document_with_a_non_finite_number_is_refused_naming_it(tmp_path: Path, cli) -> None:
    proc = cli(["report", str(CORPUS / "document" / "non_finite_number.json"), "-f", "json",
                "-o", str(tmp_path / "a.json")], tmp_path)
    assert_refused(proc, "non_finite_number.json", "not strict JSON: contains Infinity")
    assert not (tmp_path / "a.json").exists()


def test_document_corpus_is_what_the_rows_name() -> None:
    named = {r[0] for r in DOCUMENT_ROWS} | {"valid", "odd_evidence", "odd_metrics", "non_finite_number"}
    assert {p.stem for p in (CORPUS / "document").glob("*.json")} == named
    assert json.loads((CORPUS / "document" / "valid.json").read_text())["schema_version"] == 1


HISTORY = '[code]\nsources = ["src"]\njunit_xml = "junit.xml"\n[history]\npath = "h.sqlite"\n'
HISTORY_ROWS = [
    ("random_bytes", bytes(range(256)) * 12, "not an SQLite database"),
    ("sqlite_header_then_garbage", b"SQLite format 3\x00" + b"\xff" * 200, "not a readable history database"),
]


def _history_project(tmp_path: Path, data: bytes) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "mod.py").write_text("x = 1\n")
    (root / "junit.xml").write_bytes((CORPUS / "junit" / "one_passing.xml").read_bytes())
    (root / "readiness.toml").write_text(HISTORY, encoding="utf-8")
    (root / "h.sqlite").write_bytes(data)
    return root


@pytest.mark.parametrize(("name", "data", "fragment"), HISTORY_ROWS, ids=[r[0] for r in HISTORY_ROWS])
def test_corrupt_history_database_is_refused_and_left_untouched(name: str, data: bytes, fragment: str,
                                                               tmp_path: Path, cli) -> None:
    root = _history_project(tmp_path, data)
    proc = cli(["assess", "--gate", "suite_health", "-o", "out", "-f", "json"], root)
    assert_refused(proc, "h.sqlite", fragment)
    assert (root / "h.sqlite").read_bytes() == data


@pytest.mark.parametrize(("config_name", "table"), [("readiness.toml", "[history]"),
                                                    ("pyproject.toml", "[tool.readiness.history]")])
def test_corrupt_history_message_names_the_table_in_use_and_no_history(tmp_path: Path, cli, config_name: str,
                                                                      table: str) -> None:
    root = _history_project(tmp_path, HISTORY_ROWS[0][1])
    if config_name == "pyproject.toml":
        (root / "readiness.toml").unlink()
        text = HISTORY.replace("[code]", "[tool.readiness.code]").replace("[history]", "[tool.readiness.history]")
        (root / "pyproject.toml").write_text(text, encoding="utf-8")
    proc = cli(["assess", "--gate", "suite_health", "-o", "out", "-f", "json"], root)
    line = assert_refused(proc, "h.sqlite", "not an SQLite database")
    assert line.endswith(f"; move it aside, set another path in {table}, or run with --no-history"), line
    other = "[tool.readiness.history]" if table == "[history]" else "[history]"
    assert other not in line


def test_corrupt_history_database_is_refused_before_any_gate_runs(tmp_path: Path, cli) -> None:
    root = _history_project(tmp_path, HISTORY_ROWS[0][1])
    proc = cli(["assess", "--gate", "suite_health", "-o", "out", "-f", "json"], root)
    assert proc.returncode == 2
    assert not (root / ".readiness").exists(), "gates ran before the history database was checked"
