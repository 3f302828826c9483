"""suite_health and coverage across shards: N merged shards equal one unsharded run.

The `sharded` fixture project has partial line and branch coverage, a
failing test, a skipped one, a parametrized table and an integration
suite, so every number compared below can differ when a merge is wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.code.coverage import CoverageGate
from gates.code.coverage import Settings as CoverageSettings
from gates.code.shard_plugin import balanced, file_weights
from gates.code.suite_health import Settings, SuiteHealthGate
from gates.result import GateResult, Status
from tests.gates.code.quality_projects import context, copy_project

COUNTS = ("tests_total", "tests_passed", "tests_failed", "tests_errors", "tests_skipped", "pass_pct",
          "unit_pass_pct", "integration_pass_pct")
KILLER = "import os\nimport signal\n\n\ndef test_kills_its_own_process():\n    os.kill(os.getpid(), signal.SIGKILL)\n"


def measure(root: Path, shard: str = "", pytest_args: tuple[str, ...] = ()) -> tuple[GateResult, GateResult]:
    """suite_health then coverage, with work folders inside the project as a configured run has them."""
    work = root / ".readiness" / "work"
    health = SuiteHealthGate().check(context(root, Settings(shard=shard), work / "suite_health", critical=(),
                                             pytest_args=pytest_args))
    coverage = CoverageGate().check(context(root, CoverageSettings(), work / "coverage", critical=(),
                                            results={"suite_health": health}))
    return health, coverage


def per_file(coverage: GateResult) -> list:
    return {t["title"]: t["rows"] for t in coverage.evidence["tables"]}["Files (worst first)"]


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    root = copy_project("sharded", tmp_path_factory.mktemp("sharded"))
    return root, measure(root)


def assert_equal_to_unsharded(unsharded_results, health: GateResult, coverage: GateResult) -> None:
    full_health, full_coverage = unsharded_results
    assert health.status is full_health.status is Status.FAIL
    assert {k: health.metrics[k] for k in COUNTS} == {k: full_health.metrics[k] for k in COUNTS}
    assert health.evidence["failing_tests"] == full_health.evidence["failing_tests"]
    for key in ("line_pct", "branch_pct", "statements", "branches", "files_measured"):
        assert coverage.metrics[key] == full_coverage.metrics[key], key
    assert per_file(coverage) == per_file(full_coverage)
    assert coverage.status is full_coverage.status


def test_three_merged_shards_equal_the_unsharded_run(unsharded):
    root, full = unsharded
    shards = [measure(root, f"{i}/3") for i in (1, 2, 3)]
    assert all(h.status is Status.ERROR and h.score is None for h, _c in shards)  # a shard is no verdict
    assert all(c.status is Status.ERROR and c.score is None for _h, c in shards)
    files = [set(h.evidence["shard_parts"][str(i)]["files"]) for i, (h, _c) in enumerate(shards, 1)]
    assert all(files) and sum(map(len, files)) == len(set().union(*files)) == 4  # a partition of the files
    health = SuiteHealthGate.merge([h for h, _c in shards])
    coverage = CoverageGate.merge([c for _h, c in shards])
    assert_equal_to_unsharded(full, health, coverage)
    merged_junit = root / ".readiness" / "work" / "suite_health" / "merged-of-3" / "junit.xml"
    assert str(merged_junit) in health.evidence["files"] and merged_junit.read_text().count("<testcase") == 14


def test_the_shards_balance_on_the_durations_of_the_last_whole_run(unsharded):
    root, _full = unsharded
    health, _coverage = measure(root, "1/2")
    assert health.evidence["shard_parts"]["1"]["durations_from"] == ".readiness/work/suite_health/junit.xml"


def test_xdist_inside_each_shard_keeps_counts_and_coverage(unsharded):
    root, full = unsharded
    shards = [measure(root, f"{i}/2", pytest_args=("-n", "2")) for i in (1, 2)]
    assert all("-n 2" in h.evidence["command"] for h, _c in shards)
    assert_equal_to_unsharded(full, SuiteHealthGate.merge([h for h, _c in shards]),
                              CoverageGate.merge([c for _h, c in shards]))


def test_a_killed_shard_keeps_its_finished_tests_and_the_merge_names_it(tmp_path):
    root = copy_project("sharded", tmp_path)
    (root / "tests" / "unit" / "test_zz_kill.py").write_text(KILLER)
    shards = [measure(root, f"{i}/2") for i in (1, 2)]
    killed = next(i for i, (h, _c) in enumerate(shards, 1) if not h.evidence["shard_parts"][str(i)]["complete"])
    part = shards[killed - 1][0].evidence["shard_parts"][str(killed)]
    assert "SIGKILL" in part["problem"] and part["junit"] is None and part["coverage_data"] is None
    health = SuiteHealthGate.merge([h for h, _c in shards])
    assert health.status is Status.ERROR and health.score is None
    assert f"shard {killed} of 2 is incomplete: the test run was killed by SIGKILL" in health.summary
    finished = [c for c in part["cases"] if c[1] == "passed"]
    other = shards[2 - killed][0].evidence["shard_parts"][str(3 - killed)]
    assert health.evidence["partial"]["tests_total"] == len(part["cases"]) + len(other["cases"])
    assert health.evidence["partial"]["tests_passed"] >= len(finished)
    coverage = CoverageGate.merge([c for _h, c in shards])
    assert coverage.status is Status.ERROR and f"shard {killed} of 2 is incomplete" in coverage.summary


def test_a_missing_shard_is_named_and_a_rerun_shard_completes_the_merge(unsharded):
    root, full = unsharded
    first, third = measure(root, "1/3"), measure(root, "3/3")
    partial = SuiteHealthGate.merge([first[0], third[0]])
    assert partial.status is Status.ERROR and "shard 2 of 3 missing" in partial.summary
    second = measure(root, "2/3")
    # merged pairwise, as `readiness merge` folds partial results one by one
    health = SuiteHealthGate.merge([partial, second[0]])
    coverage = CoverageGate.merge([CoverageGate.merge([first[1], third[1]]), second[1]])
    assert_equal_to_unsharded(full, health, coverage)


def test_shards_that_split_the_files_differently_are_refused(unsharded):
    root, _full = unsharded
    one, two = measure(root, "1/2")[0], measure(root, "2/2")[0]
    part = dict(two.evidence["shard_parts"]["2"], digest="0" * 16)
    other = two.with_(evidence={**two.evidence, "shard_parts": {"2": part}})
    merged = SuiteHealthGate.merge([one, other])
    assert merged.status is Status.ERROR and "split the test files differently" in merged.summary


def test_a_shard_of_an_ingested_junit_is_refused(tmp_path):
    from gates.engine.protocol import GateError

    root = copy_project("sharded", tmp_path)
    junit = root / "junit.xml"
    junit.write_text("<testsuites/>")
    with pytest.raises(GateError, match="setting shard: code.junit_xml is ingested"):
        SuiteHealthGate().check(context(root, Settings(shard="1/2"), tmp_path / "w", junit_xml=junit))


def test_files_go_heaviest_first_to_the_lightest_shard():
    weights = file_weights({"a.py": 4, "b.py": 1, "c.py": 1, "d.py": 2}, {"a.py": 8.0, "b.py": 1.0})
    assert weights == {"a.py": 8.0, "b.py": 1.0, "c.py": 1.8, "d.py": 3.6}  # 9 s over 5 known tests
    assert balanced(weights, 2) == {"a.py": 1, "d.py": 2, "c.py": 2, "b.py": 2}
    assert balanced({"x.py": 1.0, "y.py": 1.0}, 3) == {"x.py": 1, "y.py": 2}
    assert file_weights({"a.py": 3}, {}) == {"a.py": 3.0}  # nothing recorded: one second a test


def test_test_contexts_are_recorded_when_the_mutation_gate_will_read_them():
    from gates.code.suite_health import records_contexts
    from gates.engine.protocol import GateError

    assert records_contexts("auto", {"gates": ("suite_health", "mutation")}, sharded=False)
    assert not records_contexts("auto", {"gates": ("suite_health", "coverage")}, sharded=False)
    assert records_contexts("auto", {}, sharded=True)  # the merged data may feed mutation jobs
    assert records_contexts("always", {}, sharded=False) and not records_contexts("never", {}, sharded=True)
    with pytest.raises(GateError, match="setting test_contexts: 'yes' is not one of auto, always, never"):
        records_contexts("yes", {}, sharded=False)


def test_durations_outside_the_project_are_refused(tmp_path):
    from gates.engine.protocol import GateError

    root = copy_project("sharded", tmp_path)
    with pytest.raises(GateError, match="setting durations: '../junit.xml' leads outside the project"):
        SuiteHealthGate().check(context(root, Settings(shard="1/2", durations="../junit.xml"), tmp_path / "w"))
