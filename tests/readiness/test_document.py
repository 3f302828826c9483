"""The assessment document: schema, versions, unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from gates.result import LEGACY_OFF_FLAG, Status
from readiness import document
from tests.reports import sample


def test_built_document_matches_the_shipped_schema() -> None:
    doc = sample.build()
    jsonschema.validate(doc, document.schema())
    assert document.validate(doc) is doc


def test_schema_requires_the_documented_top_level_keys() -> None:
    required = set(document.schema()["required"])
    assert {"schema_version", "generated_at", "project", "model", "git", "host", "tool_versions",
            "config_digest", "gates", "components", "score", "band", "verdict"} <= required


def test_newer_schema_version_is_refused_clearly() -> None:
    with pytest.raises(document.DocumentError, match="newer"):
        document.validate(sample.build(schema_version=99), "a.json")


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d.pop("verdict"), "verdict"),
    (lambda d: d["gates"][0].update(status="great"), "gates/0/status"),
    (lambda d: d.update(score=140), "score"),
])
def test_invalid_document_names_the_place(mutate, fragment: str) -> None:
    doc = sample.build()
    mutate(doc)
    with pytest.raises(document.DocumentError, match=fragment):
        document.validate(doc, "a.json")


@pytest.mark.parametrize("content,fragment", [(b"{not json", "not valid JSON"), (b"\xff\xfe", "not UTF-8"),
                                              (b"[1, 2]", "not an assessment document")])
def test_unreadable_files_name_the_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(document.DocumentError) as info:
        document.load(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(sample.build()))
    assert document.results_of(document.load(path))[0].name == "checkpoint"


def _as_schema_1(doc: dict) -> dict:
    """What Readiness wrote before schema 2: a score band beside any verdict, no partial, no `off`."""
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 1
    old["band"] = old.pop("score_band")
    del old["partial"]
    del old["verdict"]["partial"]
    for gate in old["gates"]:  # before schema 3, a gate turned off was `skipped` with a flag
        if gate["status"] == "off":
            gate.update(status="skipped", evidence={LEGACY_OFF_FLAG: True})
    return old


def test_schema_2_adds_partial_and_the_score_band() -> None:
    doc = sample.build()
    assert doc["schema_version"] == 3 == document.SCHEMA_VERSION
    assert doc["partial"] is None and doc["verdict"]["partial"] is False
    assert doc["score_band"] == "mostly ready" and doc["band"] == "blocked by suite_health, parity"


def test_a_schema_1_document_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_as_schema_1(sample.build())))
    loaded = document.load(path)
    assert loaded["schema_version"] == 1
    assert {r.name: r.status for r in document.results_of(loaded)}["mutation"] is Status.OFF  # read as turned off


def test_a_schema_2_document_without_partial_is_refused() -> None:
    doc = sample.build()
    del doc["partial"]
    with pytest.raises(document.DocumentError, match="'partial' is a required property"):
        document.validate(doc, "a.json")


def test_build_refuses_a_verdict_that_disagrees_on_partial() -> None:
    with pytest.raises(ValueError, match="disagree on whether the assessment is partial"):
        sample.build_partial(partial=None)
