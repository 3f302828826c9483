"""Selecting the tests mutmut runs from the coverage contexts of the suite run."""

from __future__ import annotations

from pathlib import Path

import coverage
import pytest

from gates.code.coverage_contexts import ReachError, node_of, reach_by_file
from gates.mutation.diagnosis import first_error
from gates.mutation.selection import SelectTests, TestSource, select


def _data(tmp_path: Path, lines_by_context: dict[str, dict[str, list[int]]], root: Path) -> Path:
    """A coverage data file as pytest-cov --cov-context=test writes it."""
    path = tmp_path / ".coverage"
    data = coverage.CoverageData(basename=str(path))
    for context, files in lines_by_context.items():
        data.set_context(context)
        data.add_lines({str(root / f): lines for f, lines in files.items()})
    data.write()
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel in ("pkg/a.py", "pkg/b.py", "tests/test_a.py", "tests/test_b.py", "other/test_c.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    return tmp_path


def test_contexts_name_the_tests_that_ran_each_file(project, tmp_path):
    data = _data(tmp_path, {"": {"pkg/a.py": [1], "pkg/b.py": [1]},
                            "tests/test_a.py::test_one|setup": {"pkg/a.py": [1]},
                            "tests/test_a.py::test_one|run": {"pkg/a.py": [1]},
                            "tests/test_b.py::TestB::test_two[1-2]|run": {"pkg/b.py": [1]},
                            "tests/test_b.py::TestB::test_three|teardown": {"pkg/a.py": [1]}}, project)
    reach = reach_by_file(data, project, ["pkg/a.py", "pkg/b.py", "pkg/none.py"])
    assert reach == {"pkg/a.py": {"tests/test_a.py::test_one", "tests/test_b.py::TestB::test_three"},
                     "pkg/b.py": {"tests/test_b.py::TestB::test_two[1-2]"}, "pkg/none.py": frozenset()}


def test_data_without_test_contexts_is_refused_not_read_as_no_tests(project, tmp_path):
    data = _data(tmp_path, {"": {"pkg/a.py": [1]}}, project)
    with pytest.raises(ReachError, match="has no test contexts"):
        reach_by_file(data, project, ["pkg/a.py"])


def test_node_of_strips_only_pytest_cov_phases():
    assert node_of("t.py::test_x|run") == "t.py::test_x"
    assert node_of("t.py::test_x[a|b]") == "t.py::test_x[a|b]"
    assert node_of("") == ""


def test_each_module_gets_its_reaching_tests_and_overrides_win(project, tmp_path):
    data = _data(tmp_path, {"tests/test_a.py::test_one|run": {"pkg/a.py": [1]},
                            "other/test_c.py::test_c|run": {"pkg/a.py": [1]},
                            "tests/test_b.py::test_two|run": {"pkg/b.py": [1]}}, project)
    chosen = select(["pkg/a.py", "pkg/b.py"], configured=("tests",),
                    overrides={"pkg/b.py": ("tests/test_b.py",)}, mode=SelectTests.COVERAGE,
                    data_file=data, root=project)
    # other/test_c.py is outside the configured tests: mutmut never runs it
    assert [(m.path, m.source, m.tests) for m in chosen.modules] == [
        ("pkg/a.py", TestSource.COVERAGE, ("tests/test_a.py::test_one",)),
        ("pkg/b.py", TestSource.CONFIGURED, ("tests/test_b.py",))]
    assert chosen.tests == ("tests/test_a.py::test_one", "tests/test_b.py") and chosen.note == ""


def test_without_contexts_every_module_gets_the_configured_tests_and_says_why(project, tmp_path):
    data = _data(tmp_path, {"": {"pkg/a.py": [1]}}, project)
    chosen = select(["pkg/a.py"], configured=("tests",), overrides={}, mode=SelectTests.COVERAGE,
                    data_file=data, root=project)
    assert chosen.tests == ("tests",) and chosen.modules[0].source is TestSource.ALL
    assert "no test contexts" in chosen.note
    everything = select(["pkg/a.py"], configured=("tests",), overrides={}, mode=SelectTests.ALL,
                        data_file=data, root=project)
    assert everything.tests == ("tests",) and everything.note.startswith("select_tests = \"all\"")


def test_node_ids_inside_a_listed_folder_are_not_listed_twice(project, tmp_path):
    chosen = select(["pkg/a.py", "pkg/b.py"], configured=("tests",),
                    overrides={"pkg/a.py": ("tests/test_a.py::test_one",), "pkg/b.py": ("tests",)},
                    mode=SelectTests.COVERAGE, data_file=None, root=project)
    assert chosen.tests == ("tests",)


def test_pytests_first_error_line_is_picked_from_its_output():
    output = ("E       fixture 'device' not found\n>       available fixtures: cache\n"
              "ERROR tests/t.py::test_x\n")
    assert first_error(output) == "fixture 'device' not found"
    assert first_error("ERROR tests/t.py - ModuleNotFoundError: No module named 'x'\n") == \
        "ModuleNotFoundError: No module named 'x'"
    assert first_error("1 passed\n") == ""


def _stored(tmp_path: Path, recorded_root: str, gates: list[dict]) -> Path:
    import json

    doc = tmp_path / "suite-merged" / "assessment.json"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(json.dumps({"project": {"root": recorded_root}, "gates": gates}))
    return doc


def test_a_stored_suite_result_gives_failing_tests_and_data_found_under_this_root(project, tmp_path):
    from gates.engine.spec import CodeSpec
    from gates.mutation.suite_facts import from_document

    data = project / ".readiness" / "work" / "suite_health" / "merged-of-2" / ".coverage"
    data.parent.mkdir(parents=True)
    data.write_text("")
    _stored(project, "/elsewhere/checkout", [
        {"name": "suite_health", "status": "fail", "evidence": {"failing_tests": ["tests/test_a.py::t"]}},
        {"name": "coverage", "status": "pass", "evidence": {
            "coverage_data": "/elsewhere/checkout/.readiness/work/suite_health/merged-of-2/.coverage"}}])
    facts = from_document("suite-merged/assessment.json", CodeSpec(root=project), project)
    assert facts.failing == ("tests/test_a.py::t",) and facts.coverage_data == data


def test_a_stored_result_without_the_suite_or_outside_the_project_is_refused(project, tmp_path):
    from gates.engine.protocol import GateError
    from gates.engine.spec import CodeSpec
    from gates.mutation.suite_facts import from_document

    _stored(project, str(project), [{"name": "hygiene", "status": "pass"}])
    with pytest.raises(GateError, match="holds no suite_health result"):
        from_document("suite-merged/assessment.json", CodeSpec(root=project), project)
    _stored(project, str(project), [{"name": "suite_health", "status": "off",
                                     "evidence": {"off_because": "listed in `skip`"}}])
    with pytest.raises(GateError, match="holds no suite_health result"):
        from_document("suite-merged/assessment.json", CodeSpec(root=project), project)
    with pytest.raises(GateError, match="leads outside the project"):
        from_document("../x.json", CodeSpec(root=project), project)
