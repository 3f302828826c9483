"""junit_report: both pytest JUnit families, node ids recovered from class names."""

from __future__ import annotations

import pytest

from gates.code.case_results import Outcome
from gates.code.junit_reader import JUnitError, read_junit


def write(tmp_path, body: str):
    path = tmp_path / "junit.xml"
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite>{body}</testsuite></testsuites>')
    return path


def test_xunit2_class_names_map_to_files_that_exist(tmp_path):
    (tmp_path / "tests" / "integration").mkdir(parents=True)
    (tmp_path / "tests" / "integration" / "test_flow.py").write_text("")
    path = write(tmp_path, '<testcase classname="tests.integration.test_flow.TestFlow" name="test_a">'
                           '<error message="failed on setup with &quot;OSError: x&quot;"/></testcase>')
    (case,) = read_junit(path, root=tmp_path)
    assert case.nodeid == "tests/integration/test_flow.py::TestFlow::test_a"
    assert case.suite == "integration"
    assert (case.outcome, case.error_type) == (Outcome.ERROR, "OSError")


def test_xunit1_file_attribute_is_used(tmp_path):
    path = write(tmp_path, '<testcase classname="tests.unit.test_a.TestX" file="tests/unit/test_a.py" '
                           'name="test_b" time="0.5"><skipped message="later"/></testcase>')
    (case,) = read_junit(path, root=tmp_path)
    assert case.nodeid == "tests/unit/test_a.py::TestX::test_b"
    assert case.outcome is Outcome.SKIPPED and case.duration_s == 0.5


def test_wrong_root_element_is_refused(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<html/>")
    with pytest.raises(JUnitError, match="has root <html>"):
        read_junit(path, root=tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(JUnitError, match="absent.xml does not exist"):
        read_junit(tmp_path / "absent.xml", root=tmp_path)
