"""The HTML report in a real browser: headless Chromium through Playwright.

Asserts what a reviewer sees — the verdict, the score and every gate row are
visible — that hostile text did not run as script, and that rendering the
page made no network request at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
def page_report(tmp_path_factory: pytest.TempPathFactory):
    doc = sample.build()
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(formats.render(doc, "html"), encoding="utf-8")
    requests: list[str] = []
    dialogs: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.on("request", lambda req: requests.append(req.url))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        yield doc, page, requests, dialogs
        browser.close()


def test_verdict_and_score_are_visible(page_report) -> None:
    doc, page, _, _ = page_report
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and verdict.inner_text() == "DO NOT SHIP"
    assert page.locator("#score").is_visible() and page.locator("#score").inner_text() == f"{doc['score']:.1f}"


def test_every_gate_row_is_visible(page_report) -> None:
    doc, page, _, _ = page_report
    for gate in doc["gates"]:
        row = page.locator(f'tr.gate-row[data-gate="{gate["name"]}"]')
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
