"""The plain `python -m pytest` of the README says why the browser tests did not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fixtures.processes import HANG_GUARD_S


def test_without_chromium_the_summary_names_what_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="needs Playwright: `pip install playwright` (or '.[test]')")
    bin_dir = tmp_path / "bin"  # a PATH without Chromium
    bin_dir.mkdir()
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/reports/test_browser.py", "-q",
                           f"--basetemp={tmp_path / 'inner'}"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(REPO)}, timeout=HANG_GUARD_S)
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all(line.endswith("needs headless Chromium: neither `chromium` nor `chromium-browser` "
                                       "is on PATH (Debian: `apt install chromium`)") for line in skips), done.stdout
