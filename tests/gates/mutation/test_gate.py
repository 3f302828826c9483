"""The mutation gate end to end: mutmut 3 on the tiny fixture projects.

Each run here mutates a module of a dozen mutants (about 5-15 s on 2 cores).
Longer runs (sampling, shards, torch) are marked heavy.
"""

from __future__ import annotations

import platform
import shutil
import sys
from importlib import metadata

import pytest

from gates.engine.protocol import GateContext
from gates.mutation.gate import MutationGate
from gates.result import GateResult, Status
from tests.fixtures.mutation.projects import context, copy_project

FAILING_TEST = "tests/test_broken.py::test_always_fails"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One cold run of the well-tested project, with its cache, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("good")
    root = copy_project("good", tmp)
    result = MutationGate().check(context(root, tmp / "work"))
    return root, tmp, result


def test_a_good_suite_passes_with_every_bucket_counted(good_run):
    _root, _tmp, result = good_run
    assert result.status is Status.PASS, result.summary
    m = result.metrics
    assert m["killed"] >= 8 and m["mutants_total"] == m["mutants_run"] > 0
    assert m["killed"] + m["timeouts"] + m["survived"] + m["no_tests"] == m["mutants_total"]
    assert m["mutation_score_pct"] >= 70.0 and m["sampled"] == 0


def test_survivors_come_with_file_line_and_diff(good_run):
    root, _tmp, result = good_run
    survivor = result.evidence["survivors"][0]
    source_line = (root / survivor["file"]).read_text().splitlines()[survivor["line"] - 1]
    removed = [line[1:] for line in survivor["diff"].splitlines()
               if line.startswith("-") and not line.startswith("---")]
    assert removed and removed[0].strip() == source_line.strip()


def test_the_run_records_the_interpreter_mutmut_ran_in_as_it_reports_itself(good_run):
    _root, _tmp, result = good_run
    interpreter = result.evidence["run"]["interpreter"]
    assert interpreter["executable"] == sys.executable and interpreter["python"] == platform.python_version()
    assert interpreter["tools"] == {name: metadata.version(name) for name in ("mutmut", "pytest", "coverage")}


def test_no_mutants_folder_is_left_in_the_users_tree(good_run):
    root, _tmp, _result = good_run
    assert not (root / "mutants").exists()
    assert (root / ".readiness" / "mutation-cache").is_dir()


def test_an_unchanged_project_is_answered_from_the_cache(good_run):
    root, tmp, first = good_run
    again = MutationGate().check(context(root, tmp / "work-again"))
    assert again.metrics["mutants_run"] == 0
    assert again.metrics["mutation_score_pct"] == first.metrics["mutation_score_pct"]


def test_after_changing_one_function_only_its_mutants_run_again(good_run, tmp_path):
    root, _tmp, first = good_run
    edited = tmp_path / "good"
    shutil.copytree(root, edited)
    core = edited / "mathlib" / "core.py"
    core.write_text(core.read_text().replace("return low\n", "return low * 1\n"))
    result = MutationGate().check(context(edited, tmp_path / "work"))
    percent_mutants = sum(1 for s in first.evidence["survivors"] if "x_percent" in s["mutant"]) + 10
    # mutmut makes 10 mutants of percent(), all killed; none of them may run again.
    assert result.metrics["mutants_cached"] == percent_mutants
    assert result.metrics["mutants_run"] == result.metrics["mutants_total"] - percent_mutants > 0


def test_a_fresh_run_measures_every_mutant_again(good_run, tmp_path):
    root, _tmp, first = good_run
    ctx = context(root, tmp_path / "work")
    fresh = MutationGate().check(GateContext(spec=ctx.spec, settings=ctx.settings, work_dir=ctx.work_dir,
                                             options={"fresh": True}))
    assert fresh.metrics["mutants_cached"] == 0
    assert fresh.metrics["mutants_run"] == fresh.metrics["mutants_total"] == first.metrics["mutants_total"]


def test_a_suite_that_asserts_nothing_scores_low_and_fails(tmp_path):
    root = copy_project("no_asserts", tmp_path)
    result = MutationGate().check(context(root, tmp_path / "work"))
    assert result.status is Status.FAIL
    assert result.metrics["mutation_score_pct"] < 50.0
    assert "mathlib/core.py" in result.remediation


def test_the_quality_suites_seeded_no_assert_project_fails_too(tmp_path):
    # Shared with the suite_health / coverage gates, which both pass it; a
    # pytest.ini project without pyproject.toml (mutmut is set up via setup.cfg).
    root = copy_project("quality_no_asserts", tmp_path)
    if not (root / "calc" / "core.py").exists():
        pytest.skip("tests/fixtures/quality/no_asserts changed shape")
    result = MutationGate().check(context(root, tmp_path / "work", critical=(("calc/core.py", "1"),)))
    assert result.status is Status.FAIL and result.metrics["mutation_score_pct"] < 50.0
    assert not (root / "setup.cfg").exists() and not (root / "mutants").exists()


def add_failing_test(root):
    (root / "tests" / "test_broken.py").write_text("def test_always_fails():\n    assert 1 == 2\n")


def test_a_failing_test_makes_the_run_an_error_not_a_score(tmp_path):
    root = copy_project("good", tmp_path)
    add_failing_test(root)
    result = MutationGate().check(context(root, tmp_path / "work", cache=False))
    assert result.status is Status.ERROR and result.score is None
    assert "tests failed" in result.summary
    assert "suite_health" in result.remediation


def test_tests_the_suite_gate_saw_failing_are_deselected_and_named(tmp_path):
    root = copy_project("good", tmp_path)
    add_failing_test(root)
    health = GateResult(name="suite_health", status=Status.FAIL, evidence={"failing_tests": [FAILING_TEST]})
    result = MutationGate().check(context(root, tmp_path / "work", cache=False, results={"suite_health": health}))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["deselected_tests"] == [FAILING_TEST]


def test_a_module_without_functions_is_an_error_not_a_pass(tmp_path):
    root = copy_project("good", tmp_path)
    (root / "mathlib" / "constants.py").write_text("LIMIT = 100\n")
    result = MutationGate().check(context(root, tmp_path / "work", critical=(("mathlib/constants.py", "1"),)))
    assert result.status is Status.ERROR and result.score is None


def test_a_backend_that_cannot_run_here_is_not_evaluable_and_says_why(tmp_path):
    root = copy_project("good", tmp_path)
    result = MutationGate().check(context(root, tmp_path / "work", backend="mutatest"))
    assert result.status is Status.NOT_EVALUABLE and "Python 3.11" in result.summary
    result = MutationGate().check(context(root, tmp_path / "work", backend="cosmic-ray"))
    assert result.status is Status.NOT_EVALUABLE and "cosmic-ray" in result.summary


def test_the_gate_reads_suite_health_without_needing_it_to_pass():
    assert "suite_health" in MutationGate.after and "suite_health" not in MutationGate.needs


@pytest.mark.heavy
def test_shards_merge_to_the_full_result(good_run, tmp_path):
    root, _tmp, full = good_run
    shards = [MutationGate().check(context(root, tmp_path / f"w{i}", shard=f"{i}/2", cache=False))
              for i in (1, 2)]
    assert sum(s.metrics["mutants_selected"] for s in shards) == full.metrics["mutants_total"]
    assert all(s.status is Status.ERROR and s.score is None for s in shards)  # a shard is no verdict
    merged = MutationGate.merge(shards)
    for key in ("killed", "survived", "timeouts", "no_tests", "mutation_score_pct"):
        assert merged.metrics[key] == full.metrics[key], key
    assert merged.status is full.status


@pytest.mark.heavy
def test_a_sample_reports_an_interval_and_is_judged_on_its_lower_bound(good_run, tmp_path):
    root, _tmp, full = good_run
    result = MutationGate().check(context(root, tmp_path / "w", sample=6, seed=3, cache=False))
    m = result.metrics
    assert m["sampled"] == 1 and m["mutants_selected"] == 6 and m["mutants_run"] == 6
    assert m["ci_low_pct"] < m["mutation_score_pct"] <= m["ci_high_pct"]
    # Six mutants cannot vouch for a 70 % threshold at 95 %: the lower bound is under it.
    assert result.status is Status.FAIL
    point = MutationGate().check(context(root, tmp_path / "w2", sample=6, seed=3, judge="point"))
    assert point.metrics["mutation_score_pct"] == m["mutation_score_pct"]


@pytest.mark.heavy
def test_the_bundled_example_project_passes(tmp_path):
    root = copy_project("example_project", tmp_path)
    critical = (("textstats/metrics.py", "1"), ("textstats/segment.py", "2"))
    result = MutationGate().check(context(root, tmp_path / "work", critical=critical))
    assert result.status is Status.PASS, result.summary
    assert result.metrics["modules_judged"] == 2 and result.metrics["killed"] > 50


@pytest.mark.heavy
def test_torch_code_runs_under_mutmuts_fork_server(tmp_path):
    root = copy_project("torch_ops", tmp_path)
    result = MutationGate().check(context(root, tmp_path / "work"))
    assert result.evidence["run"]["process_isolation"] == "forkserver"
    assert result.status is Status.PASS, result.summary
    assert result.metrics["killed"] > 0
