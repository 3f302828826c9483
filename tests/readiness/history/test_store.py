"""The SQLite history: storing, reading back, baselines, concurrency, damaged files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from readiness.history import store as history
from readiness.history.regression import DEFAULT_RULES, Rule
from readiness.history.store import HistoryError, HistorySettings
from tests.fixtures.history.documents import assessment
from tests.fixtures.processes import HANG_GUARD_S


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / ".readiness" / "history.sqlite"


def test_recorded_document_comes_back_unchanged_with_its_indexed_fields(db: Path) -> None:
    doc = assessment(score=77.5, ship=False, commit="c0ffee")
    entry = history.get(db, history.record(db, doc))
    assert entry["document"] == doc
    assert (entry["project"], entry["fingerprint"], entry["commit"]) == ("demo", "f00d", "c0ffee")
    assert (entry["score"], entry["ship"], entry["shipped"]) == (77.5, False, False)


def test_database_uses_wal_journal_and_records_its_schema_version(db: Path) -> None:
    history.record(db, assessment())
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


def test_recent_returns_newest_first_for_one_project_limited_to_n(db: Path) -> None:
    for hour in (9, 11, 10):
        history.record(db, assessment(generated_at=f"2026-11-23T{hour:02d}:00:00Z"))
    history.record(db, assessment(project="other", generated_at="2026-11-23T12:00:00Z"))
    rows = history.recent(db, "demo", 2)
    assert [r["generated_at"][11:13] for r in rows] == ["11", "10"]
    assert len(history.recent(db, None, 10)) == 4
    assert history.projects(db) == ["demo", "other"]


def test_reading_a_missing_database_finds_nothing_and_creates_nothing(db: Path) -> None:
    assert history.recent(db, "demo", 5) == []
    assert history.last_shipped(db, "demo") is None
    assert not db.exists() and not db.parent.exists()


def test_get_of_an_unknown_id_names_the_file(db: Path) -> None:
    history.record(db, assessment())
    with pytest.raises(HistoryError, match=rf"{db}.*no assessment #99"):
        history.get(db, 99)


def test_the_entry_marked_shipped_last_is_the_baseline_even_if_older(db: Path) -> None:
    older = history.record(db, assessment(generated_at="2026-11-20T10:00:00Z"))
    newer = history.record(db, assessment(generated_at="2026-11-21T10:00:00Z"))
    assert history.last_shipped(db, "demo") is None
    history.mark_shipped(db, newer)
    assert history.last_shipped(db, "demo")["id"] == newer
    history.mark_shipped(db, older)  # a deliberate rollback
    assert history.last_shipped(db, "demo")["id"] == older
    assert history.last_shipped(db, "other") is None


def test_marking_an_unknown_id_shipped_is_an_error(db: Path) -> None:
    history.record(db, assessment())
    with pytest.raises(HistoryError, match="no assessment #7"):
        history.mark_shipped(db, 7)


def test_keep_prunes_the_oldest_but_never_a_shipped_entry(db: Path) -> None:
    first = history.record(db, assessment(generated_at="2026-11-20T00:00:00Z"))
    history.mark_shipped(db, first)
    for day in (21, 22, 23):
        history.record(db, assessment(generated_at=f"2026-11-{day}T00:00:00Z"), keep=2)
    days = sorted(r["generated_at"][8:10] for r in history.recent(db, "demo", 10))
    assert days == ["20", "22", "23"]


def test_pruning_never_deletes_the_entry_just_recorded(db: Path) -> None:
    for day in (21, 22):
        history.record(db, assessment(generated_at=f"2026-11-{day}T00:00:00Z"))
    backfill = history.record(db, assessment(generated_at="2026-11-01T00:00:00Z"), keep=1)
    assert history.get(db, backfill)["generated_at"].startswith("2026-11-01")
    assert [r["generated_at"][8:10] for r in history.recent(db, "demo", 10)] == ["22", "01"]


def test_a_document_that_is_not_plain_json_is_refused(db: Path) -> None:
    doc = assessment()
    doc["host"] = {"path": Path("/tmp")}
    with pytest.raises(HistoryError, match="not plain JSON"):
        history.record(db, doc)


def test_dedupe_returns_the_id_of_an_identical_stored_document(db: Path) -> None:
    first = history.record(db, assessment())
    assert history.record(db, assessment(), dedupe=True) == first
    assert history.record(db, assessment()) != first


@pytest.mark.parametrize("project", [{}, "demo", None, {"name": ""}])
def test_a_document_without_a_project_name_is_refused(db: Path, project: object) -> None:
    doc = assessment()
    doc["project"] = project
    with pytest.raises(HistoryError, match="project.name"):
        history.record(db, doc)


def test_a_document_with_no_model_or_git_is_still_recorded(db: Path) -> None:
    doc = {**assessment(), "model": None, "git": "unknown", "verdict": {"ship": "yes"}}
    entry = history.get(db, history.record(db, doc))
    assert (entry["fingerprint"], entry["commit"], entry["ship"]) == (None, None, False)


def _record_many(db: str, worker: int, count: int, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(count):
        history.record(db, assessment(generated_at=f"2026-11-23T10:{worker:02d}:{i:02d}Z",
                                      commit=f"w{worker}-{i}"))


def test_parallel_processes_recording_at_once_lose_nothing(db: Path) -> None:
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    barrier = ctx.Barrier(4)
    workers = [ctx.Process(target=_record_many, args=(str(db), w, 10, barrier)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=HANG_GUARD_S)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    rows = history.recent(db, "demo", 100)
    assert sorted(r["commit"] for r in rows) == sorted(f"w{w}-{i}" for w in range(4) for i in range(10))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("content", [b"this is not a database at all\n" * 4,
                                     b"SQLite format 3\x00" + b"\xff" * 4000],
                         ids=["not-sqlite", "damaged-sqlite"])
def test_an_unreadable_database_is_reported_by_name_and_left_untouched(
        db: Path, content: bytes) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(HistoryError, match=str(db)):
        history.record(db, assessment())
    with pytest.raises(HistoryError, match=str(db)):
        history.recent(db, "demo", 5)
    assert db.read_bytes() == content


def test_a_database_from_a_newer_readiness_is_refused_and_left_untouched(db: Path) -> None:
    history.record(db, assessment())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 2")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(HistoryError, match=rf"{db}.*newer.*schema 2"):
        history.record(db, assessment())
    with pytest.raises(HistoryError, match="newer"):
        history.recent(db, "demo", 5)
    assert db.read_bytes() == before


def test_another_programs_sqlite_database_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    with pytest.raises(HistoryError, match="another program"):
        history.record(db, assessment())


def test_settings_default_to_the_documented_values(tmp_path: Path) -> None:
    settings = HistorySettings.from_mapping({})
    assert settings.db_path(tmp_path) == tmp_path / ".readiness" / "history.sqlite"
    assert (settings.keep, settings.trend_n, settings.first_run_policy) == (0, 20, "pass")
    assert settings.rules == DEFAULT_RULES


def test_settings_put_user_rules_before_the_defaults_they_do_not_replace() -> None:
    settings = HistorySettings.from_mapping(
        {"rules": [{"metric": "score", "max_drop": 5.0},
                   {"metric": "coverage.line_pct", "max_drop_pct": 2.0}]})
    assert settings.rules == (Rule(metric="score", max_drop=5.0),
                              Rule(metric="coverage.line_pct", max_drop_pct=2.0),
                              Rule(metric="*.score", max_drop=0.05))


@pytest.mark.parametrize("data, key", [
    ({"keep": "10"}, "tool.readiness.history.keep"),
    ({"keep": True}, "tool.readiness.history.keep"),
    ({"keep": -1}, "tool.readiness.history.keep"),
    ({"first_run_policy": "maybe"}, "tool.readiness.history.first_run_policy"),
    ({"pathh": "x"}, "tool.readiness.history.pathh"),
    ({"rules": [{"metric": "score"}]}, r"tool.readiness.history.rules\[0\].max_drop"),
])
def test_bad_settings_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        HistorySettings.from_mapping(data)


def test_entries_say_whether_an_assessment_was_partial(db: Path) -> None:
    history.record(db, assessment(generated_at="2026-11-20T10:00:00Z"))
    history.record(db, assessment(generated_at="2026-11-21T10:00:00Z", left_out=["parity"]))
    newest, oldest = history.recent(db, "demo", 5)
    assert newest["partial"] is True and newest["ship"] is False
    assert oldest["partial"] is False


def test_recent_full_only_passes_over_partial_assessments(db: Path) -> None:
    for day in range(1, 29):  # more partial runs in a row than one page of rows holds
        history.record(db, assessment(generated_at=f"2026-11-{day:02d}T10:00:00Z",
                                      left_out=None if day in (1, 3) else ["parity"]))
    full = history.recent(db, "demo", 3, full_only=True)
    assert [e["generated_at"][:10] for e in full] == ["2026-11-03", "2026-11-01"]
    assert len(history.recent(db, "demo", 3)) == 3
