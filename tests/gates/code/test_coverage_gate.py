"""coverage: numbers from coverage.py's own data, tiers, stale data, diff coverage."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import coverage
import pytest

from gates.code.coverage import CoverageGate, DiffCoverage, Settings, diff_coverage, file_rows, judge, pct_text
from gates.code.coverage_data import FileCoverage
from gates.code.diff_lines import parse_diff
from gates.code.suite_health import Settings as HealthSettings
from gates.code.suite_health import SuiteHealthGate
from gates.engine.spec import CodeSpec, CriticalModule
from gates.result import GateResult, Status
from tests.fixtures.links import EXPECTED, add_escaping_links
from tests.gates.code.quality_projects import context, copy_project

EXAMPLE_CRITICAL = (("textstats/metrics.py", "1"), ("textstats/segment.py", "2"))


def suite_then_coverage(root: Path, work: Path, settings: Settings = Settings(),
                        **code) -> tuple[GateResult, GateResult]:
    health = SuiteHealthGate().check(context(root, HealthSettings(), work, **code))
    result = CoverageGate().check(context(root, settings, work, results={"suite_health": health},
                                          **code))
    return health, result


@pytest.fixture(scope="module")
def example_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("example")
    root = copy_project("example", tmp)
    return suite_then_coverage(root, tmp / "work", sources=("textstats",),
                               critical=EXAMPLE_CRITICAL)


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory):
    """One suite run on the healthy fixture; tests copy its data before editing."""
    tmp = tmp_path_factory.mktemp("healthy")
    root = copy_project("healthy", tmp)
    health = SuiteHealthGate().check(context(root, HealthSettings(), tmp / "work"))
    return root, Path(health.evidence["coverage_data"])


def coverage_of(root: Path, data: Path, tmp_path: Path, settings: Settings = Settings()) -> GateResult:
    return CoverageGate().check(context(root, settings, tmp_path / "work", coverage_data=data))


def test_bundled_example_passes_suite_health_and_coverage_at_tier_1(example_results):
    health, result = example_results
    assert health.status is Status.PASS
    assert health.metrics["unit_pass_pct"] == 100.0
    assert health.metrics["integration_pass_pct"] == 100.0
    assert result.status is Status.PASS
    assert result.metrics["line_pct"] >= 85.0 and result.metrics["branch_pct"] >= 90.0
    critical = result.evidence["tables"][0]
    assert [row[0] for row in critical["rows"]] == ["textstats/metrics.py", "textstats/segment.py"]
    assert all(row[-1] == "ok" for row in critical["rows"])


def test_branch_pct_is_covered_over_all_branches(healthy_run, tmp_path):
    root, data = healthy_run
    result = coverage_of(root, data, tmp_path)
    assert result.status is Status.PASS
    assert result.metrics["branches"] == 8
    assert result.metrics["branch_pct"] == 100.0


def test_module_below_its_tier_fails(tmp_path):
    root = copy_project("healthy", tmp_path)
    test_file = root / "tests" / "unit" / "test_core.py"
    text = test_file.read_text()
    test_file.write_text(text[:text.index("def test_mean_of_nothing_raises")])
    health, result = suite_then_coverage(root, tmp_path / "work")
    assert health.status is Status.PASS
    assert result.status is Status.FAIL
    assert "calc/core.py below tier 1" in result.summary
    assert result.metrics["critical_below_tier"] == 1
    assert result.metrics["branch_pct"] == 87.5


def test_source_edited_after_the_run_is_stale(healthy_run, tmp_path):
    root, data = healthy_run
    copy = tmp_path / "p"
    shutil.copytree(root, copy)
    local_data = tmp_path / ".coverage"
    shutil.copy(data, local_data)
    # rewrite the data's paths for the copy, then edit a source after it
    cov_data = coverage.CoverageData(basename=str(local_data))
    cov_data.read()
    moved = coverage.CoverageData(basename=str(tmp_path / ".coverage2"))
    moved.add_arcs({f.replace(str(root), str(copy)): cov_data.arcs(f) for f in cov_data.measured_files()})
    moved.write()
    edited = copy_project("stale_coverage", tmp_path) / "edits" / "core.py"
    shutil.copy(edited, copy / "calc" / "core.py")
    result = coverage_of(copy, tmp_path / ".coverage2", tmp_path, Settings(check_mtime=False))
    assert result.status is Status.ERROR
    assert "is stale: sources changed" in result.summary and "calc/core.py" in result.summary


def test_source_newer_than_the_data_is_stale(tmp_path):
    root = copy_project("stale_coverage", tmp_path)
    health = SuiteHealthGate().check(context(root, HealthSettings(), tmp_path / "work"))
    shutil.copy(root / "edits" / "core.py", root / "calc" / "core.py")
    result = CoverageGate().check(context(root, Settings(), tmp_path / "work",
                                          results={"suite_health": health}))
    assert result.status is Status.ERROR
    assert "stale" in result.summary
    assert result.score is None


def test_measured_file_that_no_longer_exists_is_stale(healthy_run, tmp_path):
    root, data = healthy_run
    gone = root / "calc" / "core.py"
    saved = gone.read_text()
    gone.unlink()
    try:
        result = coverage_of(root, data, tmp_path)
    finally:
        gone.write_text(saved)
        os.utime(gone, (0, 0))  # older than the data again, for the other tests
    assert result.status is Status.ERROR
    assert "measured files no longer exist" in result.summary


def test_data_from_another_project_is_an_error(healthy_run, tmp_path):
    _, data = healthy_run
    other = copy_project("no_asserts", tmp_path)
    result = coverage_of(other, data, tmp_path)
    assert result.status is Status.ERROR
    assert "from another project" in result.summary


def test_data_without_branch_measurement_is_an_error_not_zero(healthy_run, tmp_path):
    root, _ = healthy_run
    lines_only = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    lines_only.add_lines({str(root / "calc" / "core.py"): [4, 6, 7]})
    lines_only.write()
    result = coverage_of(root, tmp_path / ".coverage", tmp_path)
    assert result.status is Status.ERROR
    assert "branch measurement was off" in result.summary
    assert "branch_pct" not in result.metrics


def test_no_data_at_all_is_an_error(tmp_path):
    root = copy_project("healthy", tmp_path)
    errored = GateResult(name="suite_health", status=Status.ERROR, summary="no tests were collected")
    result = CoverageGate().check(context(root, Settings(), tmp_path, results={"suite_health": errored}))
    assert result.status is Status.ERROR
    assert "suite_health produced none (error: no tests were collected)" in result.summary
    alone = CoverageGate().check(context(root, Settings(), tmp_path))
    assert "suite_health did not run" in alone.summary
    missing = coverage_of(root, tmp_path / "nothing", tmp_path)
    assert "does not exist" in missing.summary


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_diff_coverage_counts_only_changed_statements(tmp_path):
    root = copy_project("healthy", tmp_path)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    core = root / "calc" / "core.py"
    core.write_text(core.read_text() + "\n\ndef double(x: float) -> float:\n"
                    "    # nobody tests this yet\n    return 2 * x\n")
    _, result = suite_then_coverage(root, tmp_path / "work", Settings(diff_base="HEAD"))
    assert result.metrics["diff_status"] == "evaluated"
    assert result.metrics["diff_lines"] == 2  # the def and the return; the comment is not code
    assert result.metrics["diff_pct"] == 50.0  # the def line runs at import
    assert result.status is Status.FAIL


def test_diff_without_measurable_lines_is_not_evaluable_never_100():
    files = {"a.py": FileCoverage(path="a.py", statements=2, covered_lines=2, branches=0,
                                  covered_branches=0, executed=frozenset({1, 2}), missing=frozenset())}
    diff = diff_coverage(files, {"a.py": {5}, "README.md": {1}}, "main")
    assert diff.lines == 0 and diff.pct is None
    assert pct_text(diff.pct) == "n/a"


def test_parse_diff_reads_new_side_of_each_hunk():
    text = ("+++ b/pkg/a.py\n@@ -3,0 +4,2 @@\n+x\n+y\n@@ -9 +11 @@\n-z\n+w\n"
            "+++ /dev/null\n@@ -1,2 +0,0 @@\n")
    assert parse_diff(text) == {"pkg/a.py": {4, 5, 11}}


def totals_of(line_pct: float, branch_pct: float) -> FileCoverage:
    return FileCoverage(path="TOTAL", statements=10000, covered_lines=round(line_pct * 100),
                        branches=10000, covered_branches=round(branch_pct * 100),
                        executed=frozenset(), missing=frozenset())


def test_judge_uses_the_number_as_shown():
    settings = Settings(min_line_pct=85.0, min_branch_pct=90.0)
    assert judge(totals_of(84.96, 90.0), [], None, settings)[0] is Status.PASS  # shows 85.0
    status, _, reasons = judge(totals_of(84.94, 90.0), [], None, settings)
    assert status is Status.FAIL and reasons == ["line 84.9 % < 85 %"]


def test_nearly_full_coverage_is_never_shown_as_100():
    assert pct_text(99.97) == "99.9"
    assert pct_text(100.0) == "100.0"


def test_diff_below_minimum_fails_the_gate():
    diff = DiffCoverage(base="main", lines=10, covered=5)
    status, _, reasons = judge(totals_of(95.0, 95.0), [], diff, Settings())
    assert status is Status.FAIL and reasons == ["diff 50.0 % < 80 %"]


def test_critical_module_that_does_not_exist_is_an_error(healthy_run, tmp_path):
    root, data = healthy_run
    ctx = context(root, Settings(), tmp_path / "work", coverage_data=data,
                  critical=(("calc/gone.py", "1"),))
    result = CoverageGate().check(ctx)
    assert result.status is Status.ERROR
    assert "critical modules do not exist" in result.summary and "calc/gone.py" in result.summary


def _file(path: str, statements: int, covered: int) -> FileCoverage:
    return FileCoverage(path=path, statements=statements, covered_lines=covered, branches=0,
                        covered_branches=0, executed=frozenset(), missing=frozenset())


def test_files_table_lists_critical_modules_first_then_lowest_line_coverage():
    files = {f.path: f for f in (_file("a.py", 10, 10), _file("b.py", 100, 53), _file("c.py", 10, 9),
                                 _file("core.py", 10, 8), _file("empty.py", 0, 0), _file("z.py", 10, 2))}
    code = CodeSpec(root=Path("."), sources=(".",), critical=(CriticalModule(path="core.py", tier="1"),))
    rows = file_rows(files, code)
    assert [r[0] for r in rows] == ["core.py", "z.py", "b.py", "c.py", "a.py", "empty.py"]
    assert rows[0][1] == "1" and rows[1][1] == "" and rows[2][3] == "53.0"


def test_links_out_of_the_sources_are_neither_parsed_nor_stale(tmp_path):
    root = copy_project("healthy", tmp_path)
    add_escaping_links(root / "calc", tmp_path / "outside")
    health, result = suite_then_coverage(root, tmp_path / "work")
    assert health.status is Status.PASS, health.summary
    assert result.status is Status.PASS, result.summary
    files = {row[0] for row in result.evidence["tables"][1]["rows"]}
    assert files == {"calc/__init__.py", "calc/core.py"}
    report = (tmp_path / "work" / "coverage.json").read_text()
    assert "passwd" not in report and "secret" not in report and "nowhere" not in report
    cache_files = CoverageGate().cache_inputs(context(root, Settings(), tmp_path / "work",
                                                      results={"suite_health": health}))["files"]
    assert not {Path(f).name for f in cache_files} & set(EXPECTED)
