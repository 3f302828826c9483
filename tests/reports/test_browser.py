"""The HTML report in a real browser: headless Chromium through Playwright.

Asserts what a reviewer sees — the verdict, the score and every gate row are
visible — that hostile text did not run as script, and that rendering the
page made no network request at all.
"""

from __future__ import annotations

import shutil

import pytest

from reports import formats
from tests.reports import sample

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="needs Playwright: `pip install playwright` (or '.[test]')")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium: neither `chromium` nor "
                       "`chromium-browser` is on PATH (Debian: `apt install chromium`)"),
]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page_report(browser, tmp_path_factory: pytest.TempPathFactory):
    doc = sample.build()
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(formats.render(doc, "html"), encoding="utf-8")
    requests: list[str] = []
    dialogs: list[str] = []
    page = browser.new_page()
    page.on("request", lambda req: requests.append(req.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    yield doc, page, requests, dialogs
    page.close()


def test_verdict_and_score_are_visible(page_report) -> None:
    doc, page, _, _ = page_report
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and verdict.inner_text() == "DO NOT SHIP"
    assert page.locator("#score").is_visible() and page.locator("#score").inner_text() == f"{doc['score']:.1f}"


def test_every_gate_is_visible_as_a_row_or_in_the_turned_off_line(page_report) -> None:
    doc, page, _, _ = page_report
    off_line = page.locator("p.turned-off")
    assert off_line.count() == 1 and off_line.is_visible()
    for gate in doc["gates"]:
        row = page.locator(f'tr.gate-row[data-gate="{gate["name"]}"]')
        if gate["status"] == "off":
            assert row.count() == 0 and gate["name"] in off_line.inner_text(), gate["name"]
        else:
            assert row.count() == 1 and row.is_visible(), gate["name"]


def test_hostile_text_is_shown_not_run(page_report) -> None:
    _, page, _, dialogs = page_report
    assert dialogs == []
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert "<script>alert('x')</script>" in page.locator("#gates").inner_text()


def test_page_made_no_network_request(page_report) -> None:
    _, _, requests, _ = page_report
    assert [u for u in requests if not u.startswith("file://")] == []
    assert len(requests) == 1  # the report file itself, nothing else


# -- layout on narrow and wide screens -------------------------------------------------

LONG = "a_really_long_unbroken_module_name_" * 4
PARITY_COLUMNS = ["runtime", "phase", "T", "output", "runs", "max_abs", "max_rel", "mean_abs", "psnr_db",
                  "cosine", "top1_pct", "top5_pct", "kl", "nan_count", "inf_count", "status"]


def wide_document() -> dict:
    """The sample with a 16-column parity table, long names and a trend chart."""
    doc = sample.build()
    doc["project"]["name"] = "project_" + LONG
    rows = [["MIL interpreter", phase, t, f"logits_{LONG}", 3, 1.234567e-5, 2.5e-4, 3.1e-6, 98.76543,
             0.99999912, 100.0, 100.0, 1.2e-7, 0, 0, "pass"] for phase in ("prefill", "decode") for t in (64, 512)]
    parity = next(g for g in doc["gates"] if g["name"] == "parity")
    parity["evidence"] = {"tables": [{"title": "Parity per target", "columns": PARITY_COLUMNS, "rows": rows}],
                          "failures": [{"title": LONG, "detail": LONG * 3}], "files": [f"out/{LONG}.mlpackage"]}
    parity["summary"] = f"checked {LONG}"
    doc["trend"] = [{"generated_at": f"2026-11-2{i}T10:00:00Z", "score": 70.0 + i, "verdict_ship": i > 2,
                     "components": {"tests": 90.0, f"component_{LONG}": 60.0 + i}} for i in range(4)]
    from tests.reports.test_charts import performance_doc

    performance = performance_doc()["gates"][-1]
    for chart in performance["evidence"]["charts"][:2]:
        chart["series"][0]["name"] = f"series_{LONG}"
    doc["gates"].append(performance)
    return doc


@pytest.mark.parametrize("width", [390, 1280])
def test_page_never_scrolls_sideways_with_every_detail_open(browser, tmp_path, width: int) -> None:
    path = tmp_path / "report.html"
    path.write_text(formats.render(wide_document(), "html"), encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        assert page.evaluate("document.querySelectorAll('details:not([open])').length") == 0
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        viewport = page.evaluate("window.innerWidth")
        widest_table = page.evaluate("Math.max(...[...document.querySelectorAll('table')].map(t => t.scrollWidth))")
        trend = page.evaluate("document.querySelector('svg[aria-label^=\"Readiness score over\"]')"
                              ".getBoundingClientRect().width")
        charts = page.evaluate("[...document.querySelectorAll('.chart svg')].map(s => s.getBoundingClientRect().right)")
    finally:
        page.close()
    assert viewport == width
    assert scroll_width <= width, f"the page is {scroll_width} px wide in a {width} px window"
    assert trend <= width
    assert len(charts) == 2 and max(charts) <= width  # the gate's charts shrink with the window too
    if width == 390:
        assert widest_table > width  # the parity table really is wide: it scrolls in its own box
