"""Every configuration snippet in docs/user-models.md ships through `readiness assess`.

The snippets are read from the page itself (```toml blocks), so an edit to
the documentation is tested as written. Each runs in a fresh project with
what the page says is there: `model/` (a tiny Llama `save_pretrained`
folder with its tokenizer.json) for `hf:model`, the example module and a
tokenizer.json for `examples.hf_llama_adapter:build`. The `hf:` snippet runs
as a subprocess, the way the page's command runs it.

The page's `kind = "module"` snippets need trained weights and the examples
package; tests/readiness/test_module_e2e.py assesses them, each marked on
the page by name, and this file checks that none is left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.processes import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "user-models.md"
ALL_SNIPPETS = re.findall(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)
SNIPPETS = [s for s in ALL_SNIPPETS if tomllib.loads(s)["model"].get("kind", "decoder") == "decoder"]
HEAVY = {"examples.hf_llama_adapter:build"}


def _adapter(snippet: str) -> str:
    return tomllib.loads(snippet)["model"]["adapter"]


def _params() -> list:
    return [pytest.param(s, id=_adapter(s), marks=[pytest.mark.heavy] if _adapter(s) in HEAVY else [])
            for s in SNIPPETS]


def test_the_page_leads_with_hf_and_shows_a_custom_callable() -> None:
    adapters = [_adapter(s) for s in SNIPPETS]
    assert adapters[0].startswith("hf:") and "examples.hf_llama_adapter:build" in adapters
    assert PAGE.read_text(encoding="utf-8").index("hf:") < PAGE.read_text(encoding="utf-8").index("pkg.module")


def test_every_module_snippet_is_assessed_by_the_module_tests() -> None:
    from tests.readiness.test_module_e2e import ASSESSED, snippet

    modules = [s for s in ALL_SNIPPETS if s not in SNIPPETS]
    covered = [snippet(name, marker) for name, marker in ASSESSED]
    assert modules and [s for s in modules if s not in covered] == []


def _project(root: Path, snippet: str, hf_zoo) -> Path:
    adapter = _adapter(snippet)
    if adapter == "hf:model":
        hf_zoo.copy_into(root, "llama")
    elif adapter == "examples.hf_llama_adapter:build":
        (root / "examples").mkdir()
        shutil.copyfile(REPO / "examples" / "hf_llama_adapter.py", root / "examples" / "hf_llama_adapter.py")
        shutil.copyfile(hf_zoo.tokenizer, root / "tokenizer.json")
    else:
        pytest.fail(f"no project is set up for the documented adapter {adapter!r}: add it to this test")
    (root / "readiness.toml").write_text(snippet, encoding="utf-8")
    return root


@pytest.mark.parametrize("snippet", _params())
def test_every_documented_configuration_ships(tmp_path: Path, hf_zoo, snippet: str) -> None:
    project = _project(tmp_path, snippet, hf_zoo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "assess", "-o", "report"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    doc = json.loads((project / "report" / "assessment.json").read_text())
    statuses = {g["name"]: g["status"] for g in doc["gates"]}
    assert done.returncode == 0, (statuses, done.stderr[-3000:])
    assert doc["verdict"]["ship"] is True
    assert statuses["parity"] == statuses["conversion"] == statuses["export"] == "pass"
