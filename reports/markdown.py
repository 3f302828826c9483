"""Markdown report sized for a pull-request comment (under 65 KB).

The verdict, the score, the gate table and components always fit; per-gate
details (tables, failures) are added for gates that did not pass, and for a
gate whose figures are the point even when it passes (`evidence.show_details`:
the performance gate's size and latency tables), and dropped from the end
when the comment would exceed the limit, with a note saying so.
"""

from __future__ import annotations

from typing import Any, Mapping

from reports import view as views
from reports.templating import render as render_template

LIMIT_BYTES = 65_000


def render(doc: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> str:
    """The report; `v` is the document's view when the caller built it already."""
    v = v if v is not None else views.build(doc)
    details = [g for g in v["gates"] if (g["status"] != "pass" or g["show_details"])
               and (g["tables"] or g["failures"] or g["remediation"])]
    while True:
        text = render_template("report.md", v=v, details=details, baseline_delta=views.baseline_delta(v))
        if len(text.encode("utf-8")) <= LIMIT_BYTES or not details:
            break
        details = details[:-1]
    if len(text.encode("utf-8")) > LIMIT_BYTES:
        text = text.encode("utf-8")[:LIMIT_BYTES - 200].decode("utf-8", "ignore")
        text += "\n\n_Truncated to fit a pull-request comment; see the HTML report._\n"
    return text
