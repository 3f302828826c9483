"""The report formats by name and the file name each is written to."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from reports import html, json_report, junit, markdown
from reports import view as views

Renderer = Callable[[Mapping[str, Any], Mapping[str, Any] | None], str]

RENDERERS: dict[str, Renderer] = {
    "json": json_report.render,
    "html": html.render,
    "md": markdown.render,
    "junit": junit.render,
}

FILE_NAMES: dict[str, str] = {
    "json": "assessment.json",
    "html": "report.html",
    "md": "report.md",
    "junit": "junit.xml",
}

LABELS: dict[str, str] = {"json": "assessment", "html": "HTML report", "md": "Markdown report",
                          "junit": "JUnit XML"}


def render(doc: Mapping[str, Any], fmt: str, v: Mapping[str, Any] | None = None) -> str:
    """One format; `v` is the document's view when the caller built it already."""
    if fmt not in RENDERERS:
        raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(RENDERERS)})")
    return RENDERERS[fmt](doc, v)


def render_all(doc: Mapping[str, Any], fmts: Iterable[str]) -> tuple[dict[str, str], Mapping[str, Any]]:
    """Every format asked for from one view of the document; returns (text by format, the view)."""
    v = views.build(doc)
    return {fmt: render(doc, fmt, v) for fmt in fmts}, v
