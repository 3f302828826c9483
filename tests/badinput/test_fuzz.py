"""Fuzzing the parsers with hypothesis: any input gives a result or the parser's own error.

Derandomized (the same examples every run, so CI never flakes on a new
seed) and kept small: the whole module runs in seconds. Each property
states which exceptions are the parser's "clear error"; anything else is a
crash a user would see as a traceback. Known crashes are pinned as strict
xfail tests in the corpus modules and kept out of the strategies here, so
these properties keep guarding everything else.
"""

from __future__ import annotations

import copy
import json
import math
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.badinput.project import CORPUS

FUZZ = settings(derandomize=True, max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=25)

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (for mutating one place of a valid one)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy = json_values) -> Any:
    paths = _paths(base)
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "delete", "replace"]))
    if action == "delete" and path:
        doc = copy.deepcopy(base)
        target = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return doc
    return _replace(base, path, draw(values))


# -- configuration -------------------------------------------------------------------

CONFIG_KEYS = ["project", "profile", "fail_under", "enable", "skip", "timeout_s", "timeouts", "jobs",
               "cache_dir", "work_dir", "model", "code", "tiers", "components", "history", "gates",
               "checkpoint", "lengths", "sources", "weight", "line_pct", "path", "root", "fail_undr"]
toml_keys = st.sampled_from(CONFIG_KEYS) | st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
toml_tables = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda inner: st.dictionaries(toml_keys, inner, max_size=4), max_leaves=12)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '""'
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(table: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()) + "\n"


@FUZZ
@given(raw=st.dictionaries(toml_keys, toml_tables, max_size=5))
def test_config_parse_gives_a_config_or_a_config_error(raw: dict[str, Any]) -> None:
    from readiness.config import Config, ConfigError, parse

    try:
        assert isinstance(parse(raw, "fuzz.toml"), Config)
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ") and "\n" not in str(exc)


@FUZZ
@given(text=st.one_of(st.text(max_size=80),
                      st.dictionaries(toml_keys, toml_tables, max_size=4).map(_toml)))
def test_config_load_gives_a_config_or_a_config_error(text: str) -> None:
    from readiness.config import ConfigError, LoadedConfig, load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "readiness.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            assert isinstance(load(path), LoadedConfig)
        except ConfigError as exc:
            assert str(path) in str(exc)


GATE_SETTINGS = ["suite_health", "coverage", "hygiene", "mutation", "checkpoint", "parity"]


@FEW
@given(gate=st.sampled_from(GATE_SETTINGS),
       table=st.dictionaries(st.sampled_from(["timeout_s", "min_pass_pct", "min_line_pct", "sample",
                                              "python", "diff_base", "bogus"]), scalars, max_size=3))
def test_gate_settings_give_settings_or_a_config_error(gate: str, table: dict[str, Any]) -> None:
    from gates.engine import registry
    from readiness.config import ConfigError, gate_settings

    settings_type = registry.gate_class(gate).Settings
    try:
        gate_settings(settings_type, table, gate, "fuzz.toml")
    except ConfigError as exc:
        assert f"gates.{gate}" in str(exc)


@FUZZ
@given(text=st.text(max_size=40) | st.builds(lambda g, k, v: f"{g}.{k}={v}", st.sampled_from(GATE_SETTINGS),
                                                toml_keys, st.text(max_size=12)))
def test_set_override_gives_a_setting_or_a_config_error(text: str) -> None:
    from readiness.config import ConfigError
    from readiness.selection import parse_override

    try:
        gate, key, _ = parse_override(text)
        assert gate and key
    except ConfigError as exc:
        assert "--set" in str(exc)


# -- contract -------------------------------------------------------------------------

GOOD_CONTRACT = json.loads((CORPUS / "contract" / "good.json").read_text())


@FUZZ
@given(doc=mutated(GOOD_CONTRACT))
def test_contract_validate_gives_a_contract_or_a_contract_error(doc: Any) -> None:
    from pipeline.contract import Contract, ContractError, validate

    try:
        assert isinstance(validate(doc, Path("fuzz.json")), Contract)
    except ContractError as exc:
        assert str(exc).startswith("fuzz.json: ") and "\n" not in str(exc).strip()


@FEW
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_contract_load_of_any_bytes_is_a_contract_error(data: bytes) -> None:
    from pipeline.contract import ContractError, load_contract

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.json"
        path.write_bytes(data)
        with pytest.raises(ContractError, match="c.json"):
            load_contract(path)


# -- checkpoints --------------------------------------------------------------------

@FEW
@given(meta=json_values)
def test_read_checkpoint_of_any_metadata_gives_a_checkpoint_or_a_checkpoint_error(meta: Any) -> None:
    import torch
    from safetensors.torch import save_file

    from pipeline.checkpoint import Checkpoint, CheckpointError, read_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.safetensors"
        save_file({"w": torch.zeros(3)}, str(path), metadata={"readiness": json.dumps(meta)})
        try:
            assert isinstance(read_checkpoint(path), Checkpoint)
        except CheckpointError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)


@FEW
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".safetensors", ".pt", ".bin"]))
def test_read_checkpoint_of_any_bytes_is_a_checkpoint_error(data: bytes, suffix: str) -> None:
    from pipeline.checkpoint import CheckpointError, read_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m{suffix}"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match="m\\" + suffix):
            read_checkpoint(path)


# -- JUnit --------------------------------------------------------------------------

xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
attr_names = st.sampled_from(["name", "classname", "file", "message", "tests", "type"])  # not `time`: pinned bug


@st.composite
def junit_xml(draw: st.DrawFn) -> str:
    from xml.sax.saxutils import escape, quoteattr

    def element(tag: str, depth: int) -> str:
        attrs = draw(st.dictionaries(attr_names, xml_text, max_size=3))
        attr_text = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
        children = ""
        if depth < 3:
            tags = st.sampled_from(["testsuite", "testcase", "failure", "error", "skipped", "properties", "x"])
            children = "".join(element(draw(tags), depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{tag}{attr_text}>{escape(draw(xml_text))}{children}</{tag}>"

    root = draw(st.sampled_from(["testsuites", "testsuite", "html"]))
    body = element(root, 0)
    if draw(st.booleans()):  # damage it
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.sampled_from(["", "<", "&", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "]]>"]))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body


@FUZZ
@given(text=junit_xml())
def test_read_junit_gives_cases_or_a_junit_error(text: str) -> None:
    from gates.code.junit_reader import JUnitError, read_junit

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "junit.xml"
        path.write_text(text, encoding="utf-8")
        try:
            assert isinstance(read_junit(path, root=Path(folder)), tuple)
        except JUnitError as exc:
            assert str(path) in str(exc)


@FEW
@given(data=st.binary(max_size=300))
def test_read_junit_of_any_bytes_gives_cases_or_a_junit_error(data: bytes) -> None:
    from gates.code.junit_reader import JUnitError, read_junit

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "junit.xml"
        path.write_bytes(data)
        try:
            read_junit(path, root=Path(folder))
        except JUnitError as exc:
            assert str(path) in str(exc)


# -- coverage data ----------------------------------------------------------------------

@FEW
@given(data=st.binary(max_size=300))
def test_coverage_load_of_any_bytes_is_a_coverage_data_error(data: bytes) -> None:
    from gates.code.coverage_data import CoverageDataError, load

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "src").mkdir()
        data_file = root / ".coverage"
        data_file.write_bytes(data)
        with pytest.raises(CoverageDataError, match=".coverage"):
            load(data_file, root=root, sources=("src",), report_path=root / "cov.json")


lines = st.integers(-3, 12)


@FEW
@given(measured=st.dictionaries(st.sampled_from(["src/a.py", "src/b.py", "../elsewhere/c.py", "src/gone.py"]),
                                st.sets(st.tuples(lines, lines), min_size=1, max_size=6), min_size=1, max_size=3),
       arcs=st.booleans())
def test_coverage_load_of_any_recorded_data_gives_numbers_or_an_error(measured: dict, arcs: bool) -> None:
    from gates.code.coverage_data import CoverageDataError, FileCoverage, load
    from tests.badinput.artifacts import coverage_file

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "proj"
        (root / "src").mkdir(parents=True)
        (Path(folder) / "elsewhere").mkdir()
        for name in ("src/a.py", "src/b.py", "../elsewhere/c.py"):
            (root / name).write_text("x = 1\nif x:\n    y = 2\nelse:\n    y = 3\n")
        files = {(root / name).resolve() if "elsewhere" in name else root / name: list(a)
                 for name, a in measured.items()}
        data_file = coverage_file(root / ".coverage", files, arcs=arcs)
        try:
            out = load(data_file, root=root, sources=("src",), report_path=root / "cov.json", check_mtime=False)
            assert all(isinstance(f, FileCoverage) for f in out.values())
        except CoverageDataError as exc:
            assert str(data_file) in str(exc)


# -- assessment documents and every renderer -------------------------------------------

VALID_DOC = json.loads((CORPUS / "document" / "valid.json").read_text())


@FUZZ
@given(doc=mutated(VALID_DOC))
def test_document_validate_gives_the_document_or_a_document_error(doc: Any) -> None:
    """And a document that validates renders in every format."""
    from readiness.document import DocumentError, validate
    from reports import formats

    try:
        assert validate(doc, "fuzz.json") is doc
    except DocumentError as exc:
        assert str(exc).startswith("fuzz.json: ")
        return
    for fmt in formats.RENDERERS:
        assert formats.render(doc, fmt)


free_text = st.text(max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False)  # non-finite numbers: a pinned bug (corpus)
free_json = st.dictionaries(free_text, json_values, max_size=4)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents the schema accepts, with hostile text and free-form evidence everywhere it allows."""
    doc = copy.deepcopy(VALID_DOC)
    doc["project"]["name"] = draw(free_text)
    doc["generated_at"] = draw(st.text(min_size=1, max_size=30))
    doc["model"] = draw(st.none() | free_json)
    doc["host"] = draw(free_json)
    doc["verdict"]["reasons"] = draw(st.lists(free_text, max_size=3))
    doc["baseline"] = draw(st.none() | free_json)
    doc["trend"] = draw(st.lists(free_json, max_size=3))
    for gate in doc["gates"]:
        gate["summary"] = draw(free_text)
        gate["remediation"] = draw(free_text)
        gate["metrics"] = draw(free_json)
        gate["evidence"] = draw(free_json | st.fixed_dictionaries({
            "tables": st.lists(st.fixed_dictionaries({
                "title": free_text, "columns": st.lists(free_text, max_size=3),
                "rows": st.lists(st.lists(st.none() | free_text | st.integers() | finite,
                                          max_size=3), max_size=3)}), max_size=2),
            "failures": st.lists(st.fixed_dictionaries({"title": free_text, "detail": free_text}), max_size=2),
            "files": st.lists(free_text, max_size=2)}))
        gate["score"] = draw(st.none() | st.floats(0, 1))
        gate["duration_s"] = draw(st.floats(0, 1e6))
    doc["score"] = draw(st.floats(0, 100))
    return doc


@FUZZ
@given(doc=valid_documents())
def test_every_renderer_renders_every_valid_document(doc: dict[str, Any]) -> None:
    import defusedxml.ElementTree as SafeET

    from readiness.document import validate
    from reports import formats

    validate(doc, "fuzz.json")
    for fmt in formats.RENDERERS:
        text = formats.render(doc, fmt)
        assert isinstance(text, str) and text
    SafeET.fromstring(formats.render(doc, "junit").encode("utf-8"))
    assert json.loads(formats.render(doc, "json")) == json.loads(json.dumps(doc))


@FEW
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_document_load_of_any_bytes_gives_a_document_or_a_document_error(data: bytes) -> None:
    from readiness.document import DocumentError, load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.json"
        path.write_bytes(data)
        with pytest.raises(DocumentError, match="a.json"):
            load(path)
