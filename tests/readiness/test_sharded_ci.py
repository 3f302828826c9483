"""The documented project configuration and CI recipe, run on a distill-shaped project.

The project (tests/fixtures/mutation/distill_like) gets its own venv in
`.venv` (its tests need `kdmath`, which readiness's environment lacks), the
configuration snippets of docs/configuration.md and docs/gates/mutation.md,
and then the readiness commands of the sharded-suite recipe in docs/ci.md,
job by job, in one folder: what the CI's artifacts carry between jobs is
already where the next job looks for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures import project_venv
from tests.fixtures.mutation.projects import copy_project

REPO = Path(__file__).resolve().parents[2]


def fenced(page: str, language: str, containing: str) -> str:
    """The first fenced block of `language` in `page` that contains `containing`."""
    text = (REPO / page).read_text(encoding="utf-8")
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if containing in b)


def project(tmp_path: Path, page: str) -> Path:
    root = copy_project("distill_like", tmp_path)
    project_venv.build(root / ".venv")
    (root / "readiness.toml").write_text(fenced(page, "toml", "python = "), encoding="utf-8")
    return root


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a recipe step with `readiness` meaning this checkout's CLI."""
    prelude = f'readiness() {{ PYTHONPATH="{REPO}" "{sys.executable}" -m readiness.cli "$@"; }}\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "PYTEST_"))}
    return subprocess.run(["bash", "-c", prelude + command], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=900)


def document(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {**doc, "by_name": {g["name"]: g for g in doc["gates"]}}


@pytest.mark.parametrize("page", ["docs/configuration.md", "docs/gates/mutation.md"])
def test_the_documented_configuration_assesses_a_distill_shaped_project(page, tmp_path):
    root = project(tmp_path, page)
    done = shell("readiness assess --no-history --out report", root)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = document(root / "report" / "assessment.json")
    gates = doc["by_name"]
    assert [gates[n]["status"] for n in ("suite_health", "coverage", "mutation")] == ["pass"] * 3
    assert [r["gates"] for r in doc["test_runtimes"]] == [["suite_health", "mutation"]]
    assert doc["test_runtimes"][0]["executable"] == str(root / ".venv" / "bin" / "python")
    modules = gates["mutation"]["evidence"]["run"]["test_selection"]["modules"]
    source = "configured" if page.endswith("mutation.md") else "coverage"
    assert [(m["path"], m["source"]) for m in modules] == [("training/losses.py", source)]


def recipe_steps() -> list[tuple[str, dict]]:
    """(job, step) in the recipe's order, one entry per matrix value, `${{ matrix.shard }}` filled in."""
    workflow = yaml.safe_load(fenced("docs/ci.md", "yaml", "suite_health --shard"))
    steps = []
    for name, job in workflow["jobs"].items():
        for shard in (job.get("strategy", {}).get("matrix", {}).get("shard") or [None]):
            for step in job["steps"]:
                text = json.dumps(step).replace("${{ matrix.shard }}", str(shard))
                steps.append((name, json.loads(text)))
    return steps


def test_the_ci_recipe_for_suite_and_mutation_shards_decides_like_one_run(tmp_path):
    root = project(tmp_path, "docs/configuration.md")
    ran = []
    for job, step in recipe_steps():
        download = step.get("uses", "").startswith("actions/download-artifact") and step.get("with", {}).get("path")
        if download:  # artifacts by pattern land in <path>/<artifact name>/
            for folder in sorted(root.glob(step["with"]["pattern"])):
                shutil.copytree(folder, root / step["with"]["path"] / folder.name)
        command = step.get("run", "")
        if not command or command.startswith("pip install"):
            continue
        done = shell(command, root)
        assert done.returncode == 0, f"{job}: {command}\n{done.stdout}\n{done.stderr}"
        ran.append(command.split()[:3])
    assert sum(1 for c in ran if c[:3] == ["readiness", "gate", "suite_health"]) == 4
    doc = document(root / "readiness-report" / "assessment.json")
    gates = doc["by_name"]
    assert doc["partial"] is None and doc["verdict"]["ship"] is True, doc["verdict"]
    assert gates["suite_health"]["summary"].endswith("(merged from 4 shards)")
    assert gates["suite_health"]["metrics"]["tests_passed"] == 8
    assert gates["coverage"]["metrics"]["line_pct"] == 100.0 and gates["coverage"]["status"] == "pass"
    assert gates["mutation"]["status"] == "pass" and gates["mutation"]["metrics"]["mutants_total"] == 40
    assert gates["mutation"]["evidence"]["run"]["test_selection"]["modules"][0]["source"] == "coverage"
    assert (root / ".readiness" / "durations" / "junit.xml").is_file()
