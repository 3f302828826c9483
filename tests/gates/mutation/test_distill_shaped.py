"""The code gates on a project shaped like distill.

tests/fixtures/mutation/distill_like has what broke the gates on the real
repository: tests that need a package only the project's own venv has
(`kdmath`, as distill's need torch), a `device` fixture in tests/conftest.py,
a conftest that imports a helper module beside it, tests that import that
helper as `tests.training.conftest_mock_utils`, tests named as files, and a
critical module with a coverage tier that is not worth mutating.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from gates.code.coverage import CoverageGate
from gates.code.coverage import Settings as CoverageSettings
from gates.code.suite_health import Settings as HealthSettings
from gates.code.suite_health import SuiteHealthGate
from gates.engine.protocol import GateContext
from gates.engine.spec import CodeSpec, CriticalModule, ProjectSpec, Tier
from gates.mutation import runner, workspace
from gates.mutation.gate import MutationGate, Settings
from gates.result import Status
from readiness.provenance import interpreters_of
from tests.fixtures.mutation.projects import copy_project

LOSSES, SCHEDULE = "training/losses.py", "training/schedule.py"
TEST_FILES = ("tests/training/test_losses.py", "tests/training/test_schedule.py")
TIERS = {"1": Tier(line_pct=90.0, branch_pct=80.0, mutation_pct=60.0)}


def code_spec(root: Path, python: str, **changes) -> CodeSpec:
    fields = dict(root=root, sources=("training",), tests=TEST_FILES, tiers=TIERS, python=python,
                  critical=(CriticalModule(path=LOSSES, tier="1"),
                            CriticalModule(path=SCHEDULE, tier="1", mutate=False)))
    return CodeSpec(**{**fields, **changes})


def ctx(code: CodeSpec, settings, work: Path, results: dict | None = None) -> GateContext:
    """A context as an assessment running every code gate makes it (suite_health then records test contexts)."""
    return GateContext(spec=ProjectSpec(name="distill_like", root=code.root, code=code), settings=settings,
                       work_dir=work, results=dict(results or {}),
                       options={"gates": ("suite_health", "coverage", "mutation")})


@pytest.fixture(scope="module")
def measured(tmp_path_factory, project_python):
    """suite_health, coverage and mutation in the project's interpreter, as one assessment runs them."""
    tmp = tmp_path_factory.mktemp("distill-like")
    root = copy_project("distill_like", tmp)
    code = code_spec(root, str(project_python))
    health = SuiteHealthGate().check(ctx(code, HealthSettings(), tmp / "suite_health"))
    coverage = CoverageGate().check(ctx(code, CoverageSettings(), tmp / "coverage", {"suite_health": health}))
    mutation = MutationGate().check(ctx(code, Settings(max_children=2), tmp / "mutation",
                                        {"suite_health": health}))
    return root, {"suite_health": health, "coverage": coverage, "mutation": mutation}


def test_the_suite_runs_in_the_projects_own_interpreter(measured, project_python):
    _root, results = measured
    health = results["suite_health"]
    assert health.status is Status.PASS, health.summary
    assert health.metrics["tests_passed"] == 8
    assert health.evidence["interpreter"]["prefix"] == str(project_python.parent.parent)


def test_readiness_own_interpreter_lacks_the_projects_dependency(tmp_path):
    # What happened on distill: readiness's venv ran the tests and lacked their packages.
    root = copy_project("distill_like", tmp_path)
    health = SuiteHealthGate().check(ctx(code_spec(root, ""), HealthSettings(), tmp_path / "work"))
    assert health.status is Status.ERROR and "No module named 'kdmath'" in health.summary


def test_mutmut_runs_in_the_projects_interpreter_and_provenance_records_it(measured, project_python):
    _root, results = measured
    mutation = results["mutation"]
    assert mutation.status in (Status.PASS, Status.FAIL) and mutation.score is not None, mutation.summary
    interpreter = mutation.evidence["run"]["interpreter"]
    assert interpreter["executable"] == str(project_python)
    assert interpreter["prefix"] == str(project_python.parent.parent)
    assert interpreter["tools"]["mutmut"] == metadata.version("mutmut")
    runtimes = interpreters_of(results.values())
    assert [(r["executable"], r["gates"]) for r in runtimes] == [(str(project_python), ["suite_health", "mutation"])]


def test_each_module_gets_only_the_tests_its_coverage_context_shows(measured):
    _root, results = measured
    chosen = results["mutation"].evidence["run"]["test_selection"]
    assert chosen["note"] == ""
    assert chosen["modules"] == [{"path": LOSSES, "source": "coverage", "tests": 6}]
    table = {t["title"]: t["rows"] for t in results["mutation"].evidence["tables"]}["Tests per mutated module"]
    assert table == [[LOSSES, "coverage", 6]]


def test_a_critical_module_can_have_a_tier_without_being_mutated(measured):
    _root, results = measured
    rows = {t["title"]: t["rows"] for t in results["coverage"].evidence["tables"]}["Critical modules"]
    assert [row[0] for row in rows] == [LOSSES, SCHEDULE]
    assert [m["path"] for m in results["mutation"].evidence["modules"]] == [LOSSES]


def test_counts_equal_mutmut_given_the_selected_tests_directly(measured, project_python, tmp_path):
    root, results = measured
    selected = tuple(sorted(f"tests/training/test_losses.py::{name}" for name in (
        "test_kl_of_identical_distributions_is_zero", "test_kl_is_positive_for_different_distributions",
        "test_kl_ignores_zero_teacher_mass", "test_smoothed_targets_sum_to_one",
        "test_smoothing_rejects_bad_epsilon", "test_combined_loss_weights_and_temperature")))
    copy_root = workspace.build(root, workspace.RunConfig(targets=(LOSSES,), tests=selected), parent=tmp_path)
    subprocess.run([str(project_python), "-m", "mutmut", "run", "--max-children", "2"], cwd=copy_root,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                   check=True, timeout=900)
    buckets = [m.bucket for m in runner.read_mutants(copy_root, [LOSSES])]
    direct = {key: buckets.count(bucket) for key, bucket in
              (("killed", "killed"), ("survived", "survived"), ("timeouts", "timeout"), ("no_tests", "no_tests"))}
    gate = results["mutation"].metrics
    assert direct == {key: gate[key] for key in direct} and sum(direct.values()) == gate["mutants_total"] > 10


def _break(root: Path) -> None:
    (root / "tests" / "conftest.py").write_text("# the `device` fixture is gone\n")


def test_when_mutmuts_setup_fails_pytests_own_words_are_shown(tmp_path, project_python):
    root = copy_project("distill_like", tmp_path)
    _break(root)
    code = code_spec(root, str(project_python), tests=("tests/training/test_losses.py",))
    result = MutationGate().check(ctx(code, Settings(cache=False, select_tests="all"), tmp_path / "work"))
    assert result.status is Status.ERROR
    assert "pytest says: fixture 'device' not found" in result.summary
    assert any("fixture 'device' not found" in f["detail"] for f in result.evidence["failures"][1:])


def test_a_project_interpreter_without_mutmut_is_an_error_naming_it(tmp_path):
    from tests.fixtures import project_venv

    python = project_venv.build(tmp_path / "venv", tools=("pytest",))
    root = copy_project("distill_like", tmp_path)
    result = MutationGate().check(ctx(code_spec(root, str(python)), Settings(), tmp_path / "work"))
    assert result.status is Status.ERROR and result.score is None
    assert result.summary == f"mutmut is not installed for {python} (it runs the tests in its own process)"


def test_every_critical_module_unmutated_is_an_error_not_a_pass(tmp_path, project_python):
    root = copy_project("distill_like", tmp_path)
    code = code_spec(root, str(project_python), critical=(CriticalModule(path=SCHEDULE, mutate=False),))
    from gates.engine.protocol import GateError

    with pytest.raises(GateError, match="every critical module is marked mutate = false"):
        MutationGate().check(ctx(code, Settings(), tmp_path / "work"))
