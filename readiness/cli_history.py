"""The history commands: `readiness history`, `readiness diff A B`, `readiness baseline set|show`.

`register(app)` adds them to the main Typer application as top-level
commands; `readiness.cli` stays the composition root and only mounts them.
They read the history database and assessment files and never run a gate.

An assessment is named on the command line by a *reference*: `#12` (or `12`)
is history entry 12, `#latest` the newest entry, `#baseline` the project's
baseline; anything else is the path of an assessment JSON file.

Every failure the user can fix (a missing file, an unknown id, a damaged
database) is one line on stderr and exit code 2, as `readiness assess` does.

Partial assessments (`assess --gate` / `--skip`) are marked as such: their
score is never shown as a change against a full one, and `baseline set`
refuses a partial or a no-ship assessment unless `--force` says it is meant.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from readiness.history import store as history
from readiness.history.regression import FirstRunPolicy, is_partial, left_out_gates
from readiness.history.regression import diff as diff_documents
from readiness.history.store import HistoryError, HistorySettings

# (project root, settings); the lead's CLI passes one reading [tool.readiness.history].
SettingsLoader = Callable[[], "tuple[Path, HistorySettings]"]

_STYLE = {"better": "green", "worse": "bold red", "same": "dim", "changed": "yellow",
          "new": "cyan", "gone": "magenta"}
_DB_HELP = "History database (default: the configured history path, else .readiness/history.sqlite)."


def register(app: typer.Typer, *, settings_loader: SettingsLoader | None = None) -> None:
    """Add `history`, `diff` and `baseline set|show` to `app`.

    `settings_loader` returns (project root, settings); by default they come
    from the nearest Readiness configuration, read only when a command needs it.
    """
    load = settings_loader or _configured_settings

    def db_path(db: Path | None, *, must_exist: bool = False) -> Path:
        if db is not None:
            # A database named on the command line is the user's; a missing one is a typo,
            # never "no assessments recorded". (`baseline set FILE` may create one.)
            if must_exist and not db.exists():
                _fail(f"{db}: no such history database (--db)")
            return db
        root, settings = _guard(load)
        return settings.db_path(root)

    @app.command("history")
    def history_command(
        db: Optional[Path] = typer.Option(None, "--db", metavar="FILE", help=_DB_HELP),
        project: Optional[str] = typer.Option(None, "--project", metavar="NAME", help="Only this project."),
        n: int = typer.Option(20, "-n", "--limit", min=1, metavar="N", help="How many assessments to show."),
    ) -> None:
        """Show the latest stored assessments, newest first."""
        path = db_path(db, must_exist=True)
        entries = _guard(lambda: history.recent(path, project, n + 1))
        if not entries:
            Console().print(f"No assessments recorded in {path} yet.", markup=False, highlight=False)
            return
        baselines = _guard(lambda: {p: history.last_shipped(path, p) for p in {e["project"] for e in entries}})
        Console().print(_history_table(entries, n, {b["id"] for b in baselines.values() if b}))

    @app.command("diff")
    def diff_command(
        a: str = typer.Argument(..., help="Before: an assessment JSON file, #ID, #latest or #baseline."),
        b: str = typer.Argument(..., help="After: an assessment JSON file, #ID, #latest or #baseline."),
        db: Optional[Path] = typer.Option(None, "--db", metavar="FILE", help=_DB_HELP),
        project: Optional[str] = typer.Option(None, "--project", metavar="NAME",
                                              help="Project for #latest / #baseline."),
        show_all: bool = typer.Option(False, "--all", help="Also list what did not change."),
    ) -> None:
        """Per-gate and per-metric changes from A to B: what got better, what got worse."""
        path = db_path(db, must_exist=True)
        label_a, doc_a = _resolve(a, path, project)
        label_b, doc_b = _resolve(b, path, project)
        _, settings = _guard(load)
        result = _guard(lambda: diff_documents(doc_a, doc_b, settings.rules))
        console = Console(highlight=False)
        console.print(_diff_header(label_a, label_b, result))
        table = _diff_table(result, show_all)
        if table.row_count:
            console.print(table)
        else:
            console.print("No gate results on either side." if not result["gates"]
                          else "No gate status, score or metric changed.")
        console.print(_diff_summary(result["counts"]))

    baseline_app = typer.Typer(help="The assessment new runs are compared against.",
                               no_args_is_help=True, rich_markup_mode=None)

    @baseline_app.command("set")
    def baseline_set(
        ref: Optional[str] = typer.Argument(None, help="#ID or an assessment JSON file (default: the latest)."),
        db: Optional[Path] = typer.Option(None, "--db", help=_DB_HELP),
        project: Optional[str] = typer.Option(None, "--project", help="Project whose latest to use."),
        force: bool = typer.Option(False, "--force",
                                   help="Mark it even if it is partial or its verdict was not ship."),
    ) -> None:
        """Mark an assessment shipped: it becomes its project's baseline."""
        path = db_path(db)
        entry_id = _baseline_id(ref, path, project, force)
        _guard(lambda: history.mark_shipped(path, entry_id))
        entry = _guard(lambda: history.get(path, entry_id))
        typer.echo(f"Baseline of project {entry['project']} is now #{entry_id} "
                   f"({entry['generated_at']}, score {_num(entry['score'])}).")

    @baseline_app.command("show")
    def baseline_show(
        db: Optional[Path] = typer.Option(None, "--db", metavar="FILE", help=_DB_HELP),
        project: Optional[str] = typer.Option(None, "--project", metavar="NAME", help="Only this project."),
    ) -> None:
        """Show each project's baseline: the assessment marked shipped last."""
        path = db_path(db, must_exist=True)
        names = [project] if project else _guard(lambda: history.projects(path))
        if not names:
            typer.echo(f"No assessments recorded in {path} yet.")
        for name in names:
            entry = _guard(functools.partial(history.last_shipped, path, name))
            if entry is None:
                typer.echo(f"Project {name}: no baseline (nothing marked shipped yet);"
                           " run `readiness baseline set` to mark one.")
            else:
                typer.echo(f"Project {name}: baseline #{entry['id']}, {entry['generated_at']},"
                           f" score {_num(entry['score'])}, commit {_short(entry['commit'])},"
                           f" model {_short(entry['fingerprint'])}.")

    app.add_typer(baseline_app, name="baseline")


def _configured_settings() -> tuple[Path, HistorySettings]:
    """[tool.readiness.history] of the nearest configuration (defaults without one)."""
    # Imported lazily: history and baseline given --db read no configuration at all
    # (diff still does, for the directions its rules give).
    from readiness import config

    try:
        loaded = config.load()
    except config.ConfigError as exc:
        _fail(str(exc))
    return loaded.root, loaded.config.history


# --- references -------------------------------------------------------------------------------

def _resolve(ref: str, db: Path, project: str | None) -> tuple[str, Mapping[str, Any]]:
    """(label, document) for a reference given on the command line."""
    entry = _entry_of(ref, db, project)
    if entry is not None:
        return f"#{entry['id']}", entry["document"]
    return ref, _load_file(Path(ref))


def _entry_of(ref: str, db: Path, project: str | None) -> dict[str, Any] | None:
    """The history entry a `#…` reference (or a bare number) names; None for a file."""
    name = ref[1:] if ref.startswith("#") else ref
    if name.isdigit():
        return _guard(lambda: history.get(db, int(name)))
    if ref == "#latest":
        entry = _guard(lambda: history.latest(db, project))
        return entry or _fail(f"{db}: no assessments recorded" + (f" for project {project}" if project else ""))
    if ref == "#baseline":
        name = project or _only_project(db)
        return _guard(lambda: history.last_shipped(db, name)) or \
            _fail(f"{db}: project {name} has no baseline (run `readiness baseline set`)")
    if ref.startswith("#"):
        _fail(f"{ref}: not a history reference (use #ID, #latest or #baseline)")
    return None


def _baseline_id(ref: str | None, db: Path, project: str | None, force: bool) -> int:
    if ref is None:
        ref = "#latest"
    entry = _entry_of(ref, db, project)
    if entry is not None:
        label, document = f"#{entry['id']}", entry["document"]
    else:
        label, document = ref, _load_file(Path(ref))
    why = _not_a_baseline(document)
    if why and not force:
        _fail(f"{label} {why}; pass --force to make it the baseline anyway")
    if entry is not None:
        return int(entry["id"])
    return _guard(lambda: history.record(db, document, dedupe=True))


def _not_a_baseline(document: Mapping[str, Any]) -> str:
    """Why an assessment should not become a baseline ("" when it may)."""
    if is_partial(document):
        left_out = left_out_gates(document)
        gates = f" ({', '.join(left_out)} left out)" if left_out else ""
        return f"is a partial assessment{gates}: its score covers only the gates it ran"
    verdict: Mapping[str, Any] = document["verdict"] if isinstance(document.get("verdict"), Mapping) else {}
    if verdict.get("ship") is True:
        return ""
    baseline: Mapping[str, Any] = document["baseline"] if isinstance(document.get("baseline"), Mapping) else {}
    reasons = [str(r) for r in verdict.get("reasons") or []]
    # Under first_run_policy = "fail" a first run is held back only for want of a baseline:
    # accepting it is what `baseline set` is for.
    if baseline.get("first_run") and baseline.get("policy") == FirstRunPolicy.FAIL.value \
            and reasons == [baseline.get("message")]:
        return ""
    first = f": {reasons[0]}" if reasons else ""
    return f"was not a ship verdict{first}"


def _only_project(db: Path) -> str:
    names = _guard(lambda: history.projects(db))
    if len(names) != 1:
        _fail(f"{db}: holds {len(names)} projects; name one with --project")
    return names[0]


def _load_file(path: Path) -> Mapping[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        _fail(f"{path}: no such file (and not a history reference like #12)")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read it ({exc})")
    except ValueError as exc:
        _fail(f"{path}: not valid JSON ({exc})")
    if not isinstance(document, dict) or not isinstance(document.get("gates", []), list):
        _fail(f"{path}: not an assessment document (expected a JSON object with a gates list)")
    return document


def _guard(work: Callable[[], Any]) -> Any:
    """Run `work`, turning errors the user can fix into one line and exit code 2."""
    try:
        return work()
    except (HistoryError, ValueError) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# --- rendering ----------------------------------------------------------------------------------

def _history_table(entries: list[dict[str, Any]], n: int, baseline_ids: set[int]) -> Table:
    table = Table(title="Assessment history (newest first, times in UTC)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    shown = entries[:n]
    # Columns that would repeat one value on every row only cost width.
    several = len({e["project"] for e in shown}) > 1
    models = len({e["fingerprint"] for e in shown}) > 1
    columns = ["#", "When", *(["Project"] if several else []), "Commit",
               *(["Model"] if models else []), "Score", "Δ", "Verdict", "Baseline"]
    for column in columns:
        table.add_column(column, justify="right" if column in ("#", "Score", "Δ") else "left",
                         no_wrap=column != "Project",
                         min_width={"Project": 8, "Baseline": 10}.get(column))
    for i, entry in enumerate(shown):
        # A partial run's score covers only the gates it ran: it is compared with nothing.
        older = None if entry["partial"] else \
            next((e for e in entries[i + 1:] if e["project"] == entry["project"] and not e["partial"]), None)
        delta = None if older is None else _delta(older["score"], entry["score"])
        table.add_row(
            str(entry["id"]), Text(_when(entry["generated_at"])),
            *((Text(entry["project"]),) if several else ()), Text(_short(entry["commit"])),
            *((Text(_short(entry["fingerprint"])),) if models else ()),
            _num(entry["score"]),
            Text("partial", style="dim") if entry["partial"] else _arrow(delta, _score_change(delta)),
            _verdict_cell(entry),
            "★ baseline" if entry["id"] in baseline_ids else ("shipped" if entry["shipped"] else ""))
    return table


def _verdict_cell(entry: Mapping[str, Any]) -> Text:
    if entry["partial"]:
        return Text("partial", style="yellow")
    return Text("ship", style="green") if entry["ship"] else Text("no ship", style="red")


def _diff_header(label_a: str, label_b: str, result: Mapping[str, Any]) -> Text:
    score = result["score"]
    text = Text(f"{label_a} → {label_b}: score {_num(score['before'])} → {_num(score['after'])} ")
    partial = [label for label, side in ((label_a, "before"), (label_b, "after")) if result["partial"][side]]
    if partial:
        text.append(f"(not compared: {' and '.join(partial)} "
                    f"{'is a partial assessment' if len(partial) == 1 else 'are partial assessments'})",
                    style="yellow")
        return text
    text.append_text(_arrow(score["delta"], score["change"]))
    verdict = result["verdict"]
    if verdict["before"] != verdict["after"]:
        text.append(f"; verdict {_ship_word(verdict['before'])} → {_ship_word(verdict['after'])}")
    return text


def _diff_table(result: Mapping[str, Any], show_all: bool) -> Table:
    table = Table(title="Changes per gate and metric", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Gate", "Metric", "A", "B", "Δ"):
        table.add_column(column, justify="right" if column in ("A", "B", "Δ") else "left")
    for gate in result["gates"]:
        status = {"before": gate["status_before"], "after": gate["status_after"], "delta": None,
                  "change": gate["status_change"]}
        rows = [("status", status), ("score", gate["score"])]
        rows += [(m["metric"], m) for m in gate["metrics"]]
        for metric, item in rows:
            if show_all or item["change"] != "same":
                table.add_row(Text(gate["name"]), Text(metric), _cell(item["before"]),
                              _cell(item["after"]), _arrow(item["delta"], item["change"]))
    return table


def _diff_summary(counts: Mapping[str, int]) -> Text:
    text = Text()
    for i, (change, count) in enumerate(counts.items()):
        text.append(", " if i else "")
        text.append(f"{count} {change}", style=_STYLE[change] if count else "dim")
    return text


def _arrow(delta: float | None, change: str) -> Text:
    """▲/▼ follow the sign of the change; the colour says whether it is good."""
    if change in ("new", "gone", "same", "changed") or delta is None:
        word = {"same": "=", "changed": "≠", "better": "▲ better", "worse": "▼ worse"}.get(change, change)
        return Text(word, style=_STYLE.get(change, ""))
    sign = "▲ +" if delta > 0 else ("▼ " if delta < 0 else "= ")
    return Text(f"{sign}{delta:.4g}", style=_STYLE.get(change, ""))


def _score_change(delta: float | None) -> str:
    if delta is None:
        return ""
    return "same" if delta == 0 else ("better" if delta > 0 else "worse")


def _cell(value: Any) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text(f"{value:.4g}" if isinstance(value, float) else str(value))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 6)


def _when(generated_at: str) -> str:
    """Minutes are enough in a table; the stored document keeps the full time."""
    try:
        when = datetime.fromisoformat(generated_at)
    except ValueError:
        return generated_at
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M")


def _short(value: str | None) -> str:
    return "-" if not value else str(value)[:8]


def _ship_word(ship: bool | None) -> str:
    return {True: "ship", False: "no ship"}.get(ship, "unknown")  # type: ignore[arg-type]
