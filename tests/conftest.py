"""Settings for the whole suite, and the helpers its modules share.

No test may depend on how busy the machine is. Hypothesis times every
example against a 200 ms deadline and fails a test whose data generation is
"too slow": both are wall-clock margins that a loaded CI runner misses while
the code is right. The suite turns them off, and draws examples from a fixed
seed so that a failure reproduces.

Shared helpers (import them from here): `REPO`, `read_document`,
`run_readiness` (the CLI in a subprocess), `write_outcome` and the
`core_project` fixture (a project whose only gates are the core test gates).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.fixtures.processes import HANG_GUARD_S


def _cores() -> int:
    """The cores this process may use (macOS has no affinity call: all of them)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


# pytest-xdist runs the suite on every core (`-n auto` in pyproject.toml): each worker's torch
# (and the readiness processes it starts) gets its share of the cores, not all of them each.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = _cores() // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

settings.register_profile("readiness", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("readiness")

REPO = Path(__file__).resolve().parents[1]


def read_document(root: Path, out: str = "out") -> dict[str, Any]:
    """The assessment document a run wrote into `root / out`."""
    return json.loads((root / out / "assessment.json").read_text(encoding="utf-8"))


def run_readiness(args: list[str], cwd: Path, *, env: dict[str, str] | None = None,
                  timeout_s: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    """`readiness ARGS` in a subprocess on this checkout, as a user runs it."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout_s)


def write_outcome(root: Path, **data: object) -> None:
    """What the core test gate (`tests.fixtures.core_gates.FileGate`) reports next."""
    (root / "outcome.json").write_text(json.dumps(data), encoding="utf-8")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core this process may use, at most 4 (each holds a few models)."""
    return max(1, min(4, _cores()))


@pytest.fixture
def core_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose only gates are the two core test gates, history off, run from its folder."""
    from gates.engine import registry
    from tests.fixtures import core_gates

    monkeypatch.setattr(registry, "BUILTIN", dict(core_gates.GATES))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "readiness.toml").write_text("project = 'p'\n[history]\nenabled = false\n")
    return tmp_path


@pytest.fixture(scope="session")
def hf_zoo(tmp_path_factory: pytest.TempPathFactory):
    """Tiny Hugging Face model folders (tests/fixtures/hf_models.py), each built once per session."""
    pytest.importorskip("transformers")
    from tests.fixtures.hf_models import HFZoo

    return HFZoo(tmp_path_factory.mktemp("hf_zoo"))
