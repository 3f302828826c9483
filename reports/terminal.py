"""Terminal output with Rich: live progress while gates run, a summary after.

The summary reads the assessment document like every other report.
"""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from reports import view as views

TONE_STYLE = {"ship": "green", "noship": "red", "partial": "yellow"}
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold red",
         "not_evaluable": "magenta", "skipped": "dim", "off": "dim"}


class GateProgress:
    """A progress bar over the gates of one run, fed by engine events.

    It appears once the gates are selected (`planned`): a run refused before
    that (a bad setting, an unknown gate) leaves only its one error line.
    """

    def __init__(self, console: Console) -> None:
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.completed}/{task.total} gates"), TimeElapsedColumn(),
                                  console=console, transient=True)
        self._task = self._progress.add_task("gates", total=None)
        self._shown = False

    def planned(self, total: int) -> None:
        self._progress.update(self._task, total=total)
        self._progress.start()
        self._shown = True

    def __enter__(self) -> GateProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._shown:
            self._progress.stop()

    def event(self, kind: str, name: str, result: Any) -> None:
        if kind == "start":
            self._progress.update(self._task, description=f"running {escape(name)}")
        else:
            self._progress.advance(self._task)
            status = result.status.value if result is not None else "?"
            note = " (cached)" if kind == "cached" else ""
            self._progress.console.print(f"  [{STYLE.get(status, '')}]{status:>13}[/] {escape(name)}{note}")


def summary(console: Console, doc: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> None:
    """Print the gate table, the score and the verdict (`v`: the view, when already built)."""
    v = v if v is not None else views.build(doc)
    table = Table(title=f"Readiness: {escape(v['project'])}", show_lines=False)
    for column in ("gate", "status", "severity", "score", "summary"):
        table.add_column(column, overflow="fold", justify="right" if column == "score" else "left")
    for g in v["gates"]:
        status = g["status_label"] + (" (cached)" if g["cached"] else "")
        table.add_row(escape(g["name"]), f"[{STYLE.get(g['status'], '')}]{escape(status)}[/]",
                      g["severity"], g["score"], escape(g["summary"][:160]))
    console.print(table)
    for group in v["turned_off"]:
        console.print(f"[dim]{escape(group['line'])}[/]", soft_wrap=True, highlight=False)
    colour = TONE_STYLE[v["tone"]]
    console.print(f"score [bold]{v['score']}[/] / 100 ({escape(v['band'])}), threshold {v['threshold']}: "
                  f"[bold {colour}]{v['verdict_label']}[/]")
    if v["partial_note"]:
        console.print(f"[{colour}]{escape(v['partial_note'])}[/]")
    for reason in v["reasons"]:
        console.print(f"  - {escape(reason)}")
