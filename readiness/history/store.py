"""Every assessment document, stored in one SQLite file and read back.

One row per `readiness assess` run: the full JSON document plus indexed
columns to find it by (project, model fingerprint, git commit, time, score,
verdict). A row can be marked *shipped*; the last one marked is the baseline
the next run is compared against (see `readiness.history.regression`).

    >>> import tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "history.sqlite"
    >>> doc = {"schema_version": 1, "generated_at": "2026-11-23T10:00:00Z",
    ...        "project": {"name": "demo"}, "score": 82.5, "verdict": {"ship": True}}
    >>> i = record(db, doc)
    >>> recent(db, "demo", 5)[0]["document"] == doc
    True
    >>> mark_shipped(db, i); last_shipped(db, "demo")["id"] == i
    True

Shaped for concurrent CI jobs writing one file: WAL journal, a busy timeout
and a bounded retry around each transaction, schema creation under
`BEGIN IMMEDIATE`. Nothing here ever overwrites a file it cannot read: a file
that is not SQLite, a damaged one, another program's database or one written
by a newer Readiness raises `HistoryError` naming the file, and the file is
left exactly as it was.

Read functions return *entries*, plain dicts:
`{"id", "project", "fingerprint", "commit", "generated_at", "score", "ship",
"shipped", "partial", "document"}`, where `document` is the stored assessment
unchanged, `shipped` says it was marked shipped (a baseline candidate) and
`partial` that the run left configured gates out (`--gate`, `--skip`): its
score is not comparable with a full one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from readiness.history.regression import DEFAULT_RULES, FirstRunPolicy, Rule, is_partial, parse_rules

# Version of the tables below. 1: assessments + schema_version.
SCHEMA_VERSION = 1
DEFAULT_RELATIVE_PATH = Path(".readiness") / "history.sqlite"
BUSY_TIMEOUT_S = 10.0
RETRIES = 6

_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = "id, project, fingerprint, git_commit, generated_at, score, ship, shipped_seq, document"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assessments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    fingerprint TEXT,
    git_commit TEXT,
    generated_at TEXT NOT NULL,
    score REAL,
    ship INTEGER NOT NULL,
    shipped_seq INTEGER,
    digest TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assessments_project_time ON assessments (project, generated_at);
CREATE INDEX IF NOT EXISTS assessments_fingerprint ON assessments (fingerprint);
CREATE INDEX IF NOT EXISTS assessments_commit ON assessments (git_commit);
CREATE INDEX IF NOT EXISTS assessments_score ON assessments (score);
CREATE INDEX IF NOT EXISTS assessments_ship ON assessments (ship);
CREATE INDEX IF NOT EXISTS assessments_shipped ON assessments (project, shipped_seq);
CREATE INDEX IF NOT EXISTS assessments_digest ON assessments (digest);
"""

T = TypeVar("T")


class HistoryError(Exception):
    """The history database cannot be used; the message names the file."""


def record(db_path: str | Path, document: Mapping[str, Any], *, keep: int = 0,
           dedupe: bool = False) -> int:
    """Store one assessment document and return its id.

    `keep` > 0 prunes the project to its newest `keep` rows afterwards
    (shipped rows are never pruned). With `dedupe`, an identical document
    already stored is not stored twice and its id is returned.
    """
    path = Path(db_path)
    indexed = _indexed_fields(document, path)
    try:
        text = json.dumps(document, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise HistoryError(f"{path}: the assessment is not plain JSON ({exc})") from None
    digest = hashlib.sha256(text.encode()).hexdigest()

    def write(conn: sqlite3.Connection) -> int:
        if dedupe:
            row = conn.execute("SELECT id FROM assessments WHERE digest = ? ORDER BY id LIMIT 1",
                               (digest,)).fetchone()
            if row:
                return int(row[0])
        cur = conn.execute(
            "INSERT INTO assessments (project, fingerprint, git_commit, generated_at, score,"
            " ship, digest, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*indexed, digest, text))
        if keep > 0:
            _prune(conn, indexed[0], keep, spare=cur.lastrowid)
        return int(cur.lastrowid or 0)  # an INSERT always sets it

    return _transaction(path, write, create=True)


def recent(db_path: str | Path, project: str | None, n: int = 20, *,
           full_only: bool = False) -> list[dict[str, Any]]:
    """The newest `n` entries of `project` (all projects when None), newest first.

    With `full_only`, partial assessments are passed over (the trend and the
    score deltas compare full assessments only). A database that does not
    exist yet holds no entries: nothing is created.
    """
    path = Path(db_path)
    if not path.exists() or n <= 0:
        return []
    where, args = ("WHERE project = ?", (project,)) if project is not None else ("", ())
    entries: list[dict[str, Any]] = []
    page, offset = max(n, 20), 0
    while True:
        rows = _read(path, f"SELECT {_COLUMNS} FROM assessments {where}"
                           " ORDER BY generated_at DESC, id DESC LIMIT ? OFFSET ?", (*args, page, offset))
        entries += [e for e in (_entry(row, path) for row in rows) if not (full_only and e["partial"])]
        if len(entries) >= n or len(rows) < page:
            return entries[:n]
        offset += page


def get(db_path: str | Path, entry_id: int) -> dict[str, Any]:
    """One entry by id; HistoryError when there is none."""
    path = Path(db_path)
    rows = _read(_existing(path), f"SELECT {_COLUMNS} FROM assessments WHERE id = ?",
                 (int(entry_id),))
    if not rows:
        raise HistoryError(f"{path}: no assessment #{entry_id}")
    return _entry(rows[0], path)


def latest(db_path: str | Path, project: str | None = None) -> dict[str, Any] | None:
    """The newest entry of `project` (of any project when None)."""
    rows = recent(db_path, project, 1)
    return rows[0] if rows else None


def mark_shipped(db_path: str | Path, entry_id: int) -> None:
    """Mark an entry shipped: it becomes its project's baseline.

    Marking is ordered, not timed: the entry marked last is the baseline, even
    if an older assessment is marked after a newer one (a deliberate rollback).
    """
    path = _existing(Path(db_path))

    def write(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT project FROM assessments WHERE id = ?", (int(entry_id),)).fetchone()
        if row is None:
            raise HistoryError(f"{path}: no assessment #{entry_id}")
        conn.execute("UPDATE assessments SET shipped_seq ="
                     " (SELECT COALESCE(MAX(shipped_seq), 0) + 1 FROM assessments) WHERE id = ?",
                     (int(entry_id),))

    _transaction(path, write, create=False)


def last_shipped(db_path: str | Path, project: str) -> dict[str, Any] | None:
    """The entry of `project` marked shipped last, or None (a first run)."""
    path = Path(db_path)
    if not path.exists():
        return None
    rows = _read(path, f"SELECT {_COLUMNS} FROM assessments WHERE project = ? AND"
                       " shipped_seq IS NOT NULL ORDER BY shipped_seq DESC LIMIT 1", (project,))
    return _entry(rows[0], path) if rows else None


def projects(db_path: str | Path) -> list[str]:
    """Names of the projects with stored assessments, sorted."""
    path = Path(db_path)
    if not path.exists():
        return []
    return [row[0] for row in _read(path, "SELECT DISTINCT project FROM assessments ORDER BY 1", ())]


def _prune(conn: sqlite3.Connection, project: str, keep: int, spare: int | None = None) -> int:
    # `spare`: the row just recorded survives even when it is older than the rest (a backfill).
    cur = conn.execute(
        "DELETE FROM assessments WHERE project = ? AND shipped_seq IS NULL AND id IS NOT ?"
        " AND id NOT IN (SELECT id FROM assessments WHERE project = ?"
        " ORDER BY generated_at DESC, id DESC LIMIT ?)", (project, spare, project, keep))
    return cur.rowcount


def _indexed_fields(document: Mapping[str, Any], path: Path) -> tuple[Any, ...]:
    """(project, fingerprint, commit, generated_at, score, ship) of a document."""
    if not isinstance(document, Mapping):
        raise HistoryError(f"{path}: an assessment must be a JSON object, got {type(document).__name__}")
    project = _nested(document, "project", "name")
    generated_at = document.get("generated_at")
    if not isinstance(project, str) or not project:
        raise HistoryError(f"{path}: the assessment has no project.name to file it under")
    if not isinstance(generated_at, str) or not generated_at:
        raise HistoryError(f"{path}: the assessment has no generated_at time")
    score = document.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    ship = _nested(document, "verdict", "ship") is True
    return (project, _opt_str(_nested(document, "model", "fingerprint")),
            _opt_str(_nested(document, "git", "commit")), generated_at, score, int(ship))


def _nested(document: Mapping[str, Any], table: str, key: str) -> Any:
    """document[table][key], or None where either level is missing or not a table."""
    inner = document.get(table)
    return inner.get(key) if isinstance(inner, Mapping) else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _entry(row: tuple[Any, ...], path: Path) -> dict[str, Any]:
    entry_id, project, fingerprint, commit, generated_at, score, ship, shipped_seq, text = row
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HistoryError(f"{path}: assessment #{entry_id} is not valid JSON ({exc})") from None
    return {"id": entry_id, "project": project, "fingerprint": fingerprint, "commit": commit,
            "generated_at": generated_at, "score": score, "ship": bool(ship),
            "shipped": shipped_seq is not None,
            "partial": isinstance(document, dict) and is_partial(document), "document": document}


# --- connection, schema and retries -------------------------------------------------------

def _existing(path: Path) -> Path:
    if not path.exists():
        raise HistoryError(f"{path}: no history database here (run `readiness assess` first)")
    return path


def _read(path: Path, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return _transaction(path, lambda conn: conn.execute(sql, args).fetchall(),
                        create=False, write=False)


def _transaction(path: Path, work: Callable[[sqlite3.Connection], T], *, create: bool,
                 write: bool = True) -> T:
    """Run `work` in one transaction, retrying while another process holds the lock."""
    delay_s = 0.05
    for attempt in range(RETRIES):
        try:
            with _connection(path, create=create) as conn:
                if _schema_version(conn, path) is None:
                    if not create:
                        return work(_EmptyDatabase())  # type: ignore[arg-type]
                    _create_schema(conn, path)
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == RETRIES - 1:
                raise HistoryError(f"{path}: {exc}") from None
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 1.0)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: not a readable history database ({exc});"
                               " it was left untouched") from None
    raise AssertionError("unreachable")  # the loop returns or raises


@contextmanager
def _connection(path: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    _check_header(path)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        yield conn


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before sqlite3 gets a chance to touch it."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history database ({exc.strerror})") from None
    if head and head != _SQLITE_HEADER:
        raise HistoryError(f"{path}: not an SQLite database; it was left untouched")


def _schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The stored schema version, None for an empty file; raises for foreign or newer ones."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables - {"sqlite_sequence"}:
            raise HistoryError(f"{path}: an SQLite database of another program (no schema_version"
                               " table); it was left untouched")
        return None
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    version = row[0] if row else None
    if not isinstance(version, int):
        raise HistoryError(f"{path}: the schema_version table holds no version")
    if version > SCHEMA_VERSION:
        raise HistoryError(f"{path}: written by a newer Readiness (history schema {version},"
                           f" this one reads up to {SCHEMA_VERSION}); upgrade Readiness")
    return version


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    # WAL lets readers run beside the one writer; it is a property of the file, set once.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _schema_version(conn, path) is None:  # another process may have won the race
            # One statement at a time: executescript() would commit our transaction.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _EmptyDatabase:
    """Stands in for a connection to a file with no tables yet: every query is empty."""

    rowcount = 0

    def execute(self, *_: Any) -> _EmptyDatabase:
        return self

    def fetchall(self) -> list[Any]:
        return []

    def fetchone(self) -> None:
        return None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# --- settings --------------------------------------------------------------------------------

class HistorySettings(BaseModel):
    """`[history]` (`[tool.readiness.history]`): where history lives and how runs are compared.

    The one definition: the configuration validates its table with it, and
    the history commands read it. `path` is relative to the project root;
    `keep` = 0 keeps every assessment; `trend_n` is how many assessments the
    trend chart spans (two at least: one point is no trend); `rules` are the
    effective regression rules (the user's, then the defaults they leave).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    path: StrictStr = str(DEFAULT_RELATIVE_PATH)
    keep: StrictInt = Field(default=0, ge=0)
    trend_n: StrictInt = Field(default=20, ge=2, le=1000)
    first_run_policy: FirstRunPolicy = FirstRunPolicy.PASS
    status_regressions: StrictBool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES

    @field_validator("rules", mode="before")
    @classmethod
    def _parse_rules(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, tuple) and all(isinstance(rule, Rule) for rule in value):
            return value
        key = (info.context or {}).get("key", "history")
        return parse_rules(value, key=f"{key}.rules")

    def db_path(self, project_root: str | Path) -> Path:
        """The database file: `path` as given when absolute, else under the project root."""
        return Path(project_root) / Path(self.path).expanduser()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, key: str = "tool.readiness.history") -> HistorySettings:
        """Validate a configuration table; ValueError names the bad key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{key}: expected a table, got {data!r}")
        try:
            return cls.model_validate(dict(data), context={"key": key})
        except ValidationError as exc:
            raise ValueError(describe_error(exc.errors()[0], key)) from None


def describe_error(error: Mapping[str, Any], key: str) -> str:
    """One pydantic error of the history table as one line naming `key.field`."""
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(HistorySettings.model_fields))
        return f"{key}.{loc}: unknown setting (allowed: {allowed})"
    if error["type"] == "value_error":  # a rule: its own message names the key
        return str(error["ctx"]["error"])
    return f"{key}.{loc} = {error.get('input')!r}: {error['msg']}"
