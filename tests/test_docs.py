"""The README and docs/: for users and contributors, and every link in them leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in pages]


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_resolves(page: Path) -> None:
    targets = [t.split("#")[0] for t in LINK.findall(page.read_text(encoding="utf-8"))
               if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    missing = [t for t in targets if t and not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_docs_carry_no_machine_paths_or_working_notes(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    # An absolute path starts the word; `.readiness/work/...` is the project's own work folder.
    found = [m.group(0) for m in re.finditer(r"(?<![\w.])/(?:work|home)/\S+|docs/dev\b|\btell the lead\b|\bowned by\b",
                                             text, flags=re.IGNORECASE)]
    assert not found, f"{page.name}: {found}"
