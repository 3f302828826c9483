"""`readiness assess` and `readiness demo` as a user runs them: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.demo import copy_example
from tests.conftest import REPO, run_readiness
from tests.fixtures.processes import HANG_GUARD_S


def _readiness(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_readiness(args, cwd)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "example")
    (root / "readiness.toml").write_text((root / "readiness.toml").read_text() + "\n[history]\nenabled = false\n")
    return root


def test_assess_example_project_ships_and_writes_every_report(example: Path) -> None:
    # mutation turned off by the configuration: still a full assessment, so it may ship
    config = example / "readiness.toml"
    config.write_text('skip = ["mutation"]\n' + config.read_text())
    done = _readiness(["assess", "-o", "out"], example)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((example / "out" / "assessment.json").read_text())
    statuses = {g["name"]: g["status"] for g in doc["gates"]}
    assert statuses["suite_health"] == statuses["coverage"] == statuses["hygiene"] == "pass"
    assert statuses["checkpoint"] == "off"  # no [model] section: turned off, and said so
    assert doc["verdict"]["ship"] is True and doc["partial"] is None and doc["band"] == "production ready"
    for name in ("report.html", "report.md", "junit.xml"):
        assert (example / "out" / name).stat().st_size > 0
    assert "Wrote HTML report to" in done.stderr


def test_assess_exits_1_when_a_test_fails_and_names_it(example: Path) -> None:
    test_file = next((example / "tests" / "unit").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\ndef test_seeded_failure():\n    assert 1 == 2\n")
    done = _readiness(["assess", "--skip", "mutation", "-o", "out"], example)
    assert done.returncode == 1, done.stderr[-3000:]
    doc = json.loads((example / "out" / "assessment.json").read_text())
    assert "suite_health" in doc["verdict"]["vetoed_by"] and doc["band"] == "partial run, blocked by suite_health"
    assert doc["partial"]["left_out"] == ["mutation"]  # --skip on the command line: a partial run
    assert "test_seeded_failure" in (example / "out" / "report.html").read_text()


@pytest.mark.heavy
def test_demo_ships_and_a_warm_rerun_reuses_results(tmp_path: Path) -> None:
    done = _readiness(["demo", "-o", "out", "--work", "work"], tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads((tmp_path / "out" / "assessment.json").read_text())
    assert doc["verdict"]["ship"] is True
    assert all(g["status"] == "pass" for g in doc["gates"]), [(g["name"], g["summary"]) for g in doc["gates"]]
    parity = next(g for g in doc["gates"] if g["name"] == "parity")  # the demo's int4 and stateful variants
    assert {"coreml_int4_block32", "coreml_stateful_fp16"} <= set(parity["evidence"]["targets"])
    again = _readiness(["demo", "-o", "out", "--work", "work"], tmp_path)
    assert again.returncode == 0
    rerun = json.loads((tmp_path / "out" / "assessment.json").read_text())
    assert sum(g["cached"] for g in rerun["gates"]) >= 8
    assert len(rerun["trend"]) == 2


def test_rerendering_a_report_never_imports_torch(tmp_path: Path) -> None:
    from tests.reports import sample

    (tmp_path / "a.json").write_text(json.dumps(sample.build()))
    code = ("import sys; from readiness.cli import main; "
            "rc = main(['report', 'a.json', '-f', 'html', '-o', 'r.html']); "
            "print(rc, 'torch' in sys.modules, 'coremltools' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.stdout.split() == ["0", "False", "False"], done.stderr[-2000:]
    html = (tmp_path / "r.html").read_text()
    gates = sample.build()["gates"]
    off = [g for g in gates if g["status"] == "off"]
    assert html.count('class="gate-row"') == len(gates) - len(off)
    assert html.count('class="meta turned-off"') == len(off) == 1
