"""The isolated copy mutmut runs in, and the per-mutant cache."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gates.engine.spec import CodeSpec
from gates.mutation import session as mutation_session
from gates.mutation import workspace
from gates.mutation.cache import CachedResult, MutationCache, context_hash, function_hashes
from gates.mutation.gate import targets_of
from tests.fixtures.links import EXPECTED, SECRET, add_escaping_links
from tests.fixtures.mutation.projects import copy_project

CONFIG = workspace.RunConfig(targets=("mathlib/core.py",), tests=("tests",),
                             deselect=("tests/test_core.py::test_percent_of_zero_whole_is_zero",))


def test_the_copy_holds_the_packages_the_tests_import(tmp_path):
    root = copy_project("good", tmp_path)
    copied = {p.relative_to(root).as_posix() for p in workspace.paths_to_copy(root, ["mathlib/core.py"], ["tests"])}
    # tests/conftest.py imports `support`, which mutmut alone would not copy.
    assert {"mathlib", "tests", "support"} <= copied


def test_the_copy_is_configured_for_mutmut_and_the_user_tree_is_untouched(tmp_path):
    root = copy_project("good", tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    copy_root = workspace.build(root, CONFIG, parent=tmp_path)
    config = tomllib.loads((copy_root / "pyproject.toml").read_text())
    mutmut = config["tool"]["mutmut"]
    assert mutmut["source_paths"] == ["mathlib/core.py"]
    assert "support" in mutmut["also_copy"] and "mathlib/core.py" not in mutmut["also_copy"]
    assert mutmut["pytest_add_cli_args"] == ["--deselect", CONFIG.deselect[0]]
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]  # the user's settings stay
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_a_users_own_mutmut_section_is_replaced_not_duplicated(tmp_path):
    root = copy_project("good", tmp_path)
    with (root / "pyproject.toml").open("a") as out:
        out.write('\n[tool.mutmut]\nsource_paths = ["elsewhere"]\n\n[tool.other]\nkeep = 1\n')
    config = tomllib.loads((workspace.build(root, CONFIG, parent=tmp_path) / "pyproject.toml").read_text())
    assert config["tool"]["mutmut"]["source_paths"] == ["mathlib/core.py"]
    assert config["tool"]["other"] == {"keep": 1}


def test_without_pyproject_the_configuration_goes_to_setup_cfg(tmp_path):
    root = copy_project("good", tmp_path)
    (root / "pyproject.toml").unlink()
    copy_root = workspace.build(root, CONFIG, parent=tmp_path)
    text = (copy_root / "setup.cfg").read_text()
    assert "[mutmut]" in text and "source_paths =\n    mathlib/core.py" in text
    assert not (copy_root / "pyproject.toml").exists()


def test_torch_imports_are_detected(tmp_path):
    torch_root = copy_project("torch_ops", tmp_path)
    good_root = copy_project("good", tmp_path)
    assert workspace.imports_torch(torch_root.rglob("*.py"))
    assert not workspace.imports_torch(good_root.rglob("*.py"))


SOURCE = '''LIMIT = 1

def a(x):
    return x + LIMIT

def b(x):
    return x * 2
'''


def test_function_hashes_ignore_comments_and_formatting():
    reformatted = SOURCE.replace("return x + LIMIT", "return (x + LIMIT)  # same")
    assert function_hashes(SOURCE) == function_hashes(reformatted)
    assert function_hashes(SOURCE)["x_b"] != function_hashes(SOURCE.replace("x * 2", "x * 3"))["x_b"]
    assert context_hash(SOURCE) != context_hash(SOURCE.replace("LIMIT = 1", "LIMIT = 2"))


def project(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    (tmp_path / "tests" / "test_b.py").write_text("def test_b(): pass\n")
    return tmp_path


def stored_cache(root: Path) -> MutationCache:
    cache = MutationCache(root / "cache", root=root, fingerprint="f", test_files=["tests/test_a.py", "tests/test_b.py"])
    names = ["m.x_a__mutmut_1", "m.x_a__mutmut_2", "m.x_b__mutmut_1"]
    results = {"m.x_a__mutmut_1": CachedResult(exit_code=1, line=None, diff=""),
               "m.x_a__mutmut_2": CachedResult(exit_code=0, line=4, diff="-x\n+y"),
               "m.x_b__mutmut_1": CachedResult(exit_code=1, line=None, diff="")}
    cache.store("m.py", SOURCE, names, results, {"x_a": ["tests/test_a.py"], "x_b": ["tests/test_b.py"]})
    return cache


def reopen(root: Path) -> MutationCache:
    return MutationCache(root / "cache", root=root, fingerprint="f", test_files=["tests/test_a.py", "tests/test_b.py"])


def test_an_unchanged_file_is_answered_from_the_cache(tmp_path):
    root = project(tmp_path)
    stored_cache(root)
    found = reopen(root).lookup("m.py", SOURCE)
    assert found.names == ("m.x_a__mutmut_1", "m.x_a__mutmut_2", "m.x_b__mutmut_1")
    assert found.results["m.x_a__mutmut_2"].diff == "-x\n+y"


def test_changing_one_function_drops_only_its_results(tmp_path):
    root = project(tmp_path)
    stored_cache(root)
    found = reopen(root).lookup("m.py", SOURCE.replace("x * 2", "x * 3"))
    assert found.names is None  # the changed function must be generated again
    assert set(found.results) == {"m.x_a__mutmut_1", "m.x_a__mutmut_2"}


def test_editing_a_test_that_reached_a_function_reruns_its_killed_mutants(tmp_path):
    root = project(tmp_path)
    stored_cache(root)
    (root / "tests" / "test_b.py").write_text("def test_b(): assert True\n")
    found = reopen(root).lookup("m.py", SOURCE)
    # x_b was reached by test_b.py; x_a's killed mutant was not; any test edit may kill a survivor.
    assert set(found.results) == {"m.x_a__mutmut_1"}


def test_another_fingerprint_reuses_nothing(tmp_path):
    root = project(tmp_path)
    stored_cache(root)
    other = MutationCache(root / "cache", root=root, fingerprint="g", test_files=["tests/test_a.py"])
    found = other.lookup("m.py", SOURCE)
    assert found.names is None and not found.results


def test_links_out_of_the_project_never_enter_the_copy(tmp_path):
    root = copy_project("good", tmp_path)
    add_escaping_links(root / "mathlib", tmp_path / "outside")
    copy_root = workspace.build(root, CONFIG, parent=tmp_path)
    copied = [p for p in copy_root.rglob("*")]
    assert not any(p.is_symlink() for p in copied)
    names = {p.relative_to(copy_root).as_posix() for p in copied}
    assert "mathlib/core.py" in names and not {f"mathlib/{n}" for n in EXPECTED} & names
    assert not any(SECRET in p.read_text(errors="replace") for p in copied if p.is_file())
    also_copy = tomllib.loads((copy_root / "pyproject.toml").read_text())["tool"]["mutmut"]["also_copy"]
    assert not any(Path(entry).name in EXPECTED for entry in also_copy)


def test_links_are_never_mutation_targets_nor_hashed_test_files(tmp_path):
    root = copy_project("good", tmp_path)
    add_escaping_links(root / "mathlib", tmp_path / "outside")
    (root / "tests" / "test_link.py").symlink_to("/etc/passwd")
    code = CodeSpec(root=root, sources=("mathlib",), tests=("tests",))
    assert sorted(targets_of(code, "2")) == ["mathlib/__init__.py", "mathlib/core.py"]
    assert "tests/test_link.py" not in mutation_session.test_files(root, ["tests"])
    assert not workspace.imports_torch(workspace.files_under(root, root / "mathlib"))


def test_tests_named_as_files_bring_every_conftest_package_and_helper_on_their_way(tmp_path):
    # distill: `fixture 'device' not found`, then `No module named 'tests.training.conftest_mock_utils'`
    root = copy_project("distill_like", tmp_path)
    copied = {p.relative_to(root).as_posix() for p in workspace.paths_to_copy(
        root, ["training/losses.py"], ["tests/training/test_losses.py::test_kl_ignores_zero_teacher_mass"])}
    assert copied == {"training", "tests/__init__.py", "tests/conftest.py", "tests/training/__init__.py",
                      "tests/training/conftest.py", "tests/training/conftest_mock_utils.py",
                      "tests/training/test_losses.py"}


def test_relative_and_submodule_imports_are_resolved():
    from gates.mutation.needed_files import imported_modules_of

    source = "from .conftest_mock_utils import make\nfrom .. import shared\nimport pkg.sub.mod\n"
    assert imported_modules_of(source, package="tests.training") == {
        "tests.training.conftest_mock_utils", "tests.training.conftest_mock_utils.make",
        "tests", "tests.shared", "pkg.sub.mod"}


def test_the_cache_keys_on_the_conftests_of_tests_named_by_node_id(tmp_path):
    root = copy_project("distill_like", tmp_path)
    files = mutation_session.test_files(root, ["tests/training/test_losses.py::test_kl_ignores_zero_teacher_mass"])
    assert {"tests/conftest.py", "tests/training/conftest.py", "tests/training/test_losses.py",
            "pyproject.toml"} <= set(files)


def test_importing_the_test_package_brings_its_init_not_every_test(tmp_path):
    root = copy_project("distill_like", tmp_path)
    helper = root / "tests" / "training" / "conftest.py"
    helper.write_text(helper.read_text().replace("from .conftest_mock_utils import make_distributions",
                                                 "from tests.training import conftest_mock_utils\n"
                                                 "make_distributions = conftest_mock_utils.make_distributions"))
    copied = {p.relative_to(root).as_posix() for p in workspace.paths_to_copy(
        root, ["training/losses.py"], ["tests/training/test_losses.py"])}
    assert "tests/training/conftest_mock_utils.py" in copied and "tests/training/test_schedule.py" not in copied
    assert "tests/training" not in copied and "tests" not in copied
