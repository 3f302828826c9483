"""The report formats by name and the file name each is written to."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from reports import html, json_report, junit, markdown

Renderer = Callable[[Mapping[str, Any]], str]

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


def render(doc: Mapping[str, Any], fmt: str) -> str:
    if fmt not in RENDERERS:
        raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(RENDERERS)})")
    return RENDERERS[fmt](doc)
