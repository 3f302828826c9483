"""JUnit XML with one test case per gate, so CI systems list gates as tests.

`fail` becomes a <failure>, `error` and `not_evaluable` an <error> (neither is
a pass), `skipped` a <skipped>. Gates turned off by configuration keep one
skipped case each, unlike the grouped line of the other reports: CI systems
count and chart test cases by name, and a gate whose case vanished would read
as a test deleted rather than one not run. Text from gates is untrusted: characters XML
forbids are stripped and ElementTree escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping

from reports import view as views

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: object) -> str:
    return _FORBIDDEN.sub("", str(text))


def _details(g: Mapping[str, Any]) -> str:
    lines = [g["summary"]]
    if g["remediation"]:
        lines.append("remediation: " + g["remediation"])
    lines += [f"{name}: {value}" for name, value in g["metrics"]]
    lines += [f"- {f['title']}\n{f['detail']}" for f in g["failures"][:20]]
    return clean("\n".join(lines))


def render(doc: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> str:
    """The report; `v` is the document's view when the caller built it already."""
    v = v if v is not None else views.build(doc)
    counts = v["counts"]
    suite = ET.Element("testsuite", {
        "name": clean(f"readiness:{v['project']}"),
        "tests": str(len(v["every_gate"])),
        "failures": str(counts["fail"]),
        "errors": str(counts["error"] + counts["not_evaluable"]),
        "skipped": str(counts["skipped"] + counts["off"]),
        "time": f"{sum(float(g.get('duration_s') or 0) for g in doc['gates']):.3f}",
        "timestamp": clean(v["generated_at"]),
    })
    props = ET.SubElement(suite, "properties")
    properties = [("score", v["score"]), ("band", v["band"]), ("verdict", v["verdict_label"]),
                  ("partial", "true" if v["partial"] else "false")]
    if v["partial"]:  # "partial: 2 of 12 gates ran (left out: …); not a ship decision"
        properties.append(("partial_note", v["partial_note"]))
    for name, value in properties:
        ET.SubElement(props, "property", {"name": name, "value": clean(value)})
    for g, raw in zip(v["every_gate"], doc["gates"]):
        case = ET.SubElement(suite, "testcase", {"classname": "readiness.gates", "name": clean(g["name"]),
                                                 "time": f"{float(raw.get('duration_s') or 0):.3f}"})
        message = clean(g["summary"])[:500]
        if g["status"] == "fail":
            ET.SubElement(case, "failure", {"message": message, "type": "fail"}).text = _details(g)
        elif g["status"] in ("error", "not_evaluable"):
            ET.SubElement(case, "error", {"message": message, "type": g["status"]}).text = _details(g)
        elif g["status"] in ("skipped", "off"):
            ET.SubElement(case, "skipped", {"message": message})
        else:
            ET.SubElement(case, "system-out").text = _details(g)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
