"""Why mutmut's setup failed, in pytest's own words.

When mutmut's stats run, clean run or test listing fails it often says only
`failed to collect stats. runner returned 1`: under its fork server the
pytest output goes to a child whose output it never shows. The gate then
runs the same tests once more with plain pytest, in the same interpreter and
in the same isolated copy (mutmut's `mutants/` tree, no mutant active), and
reports what pytest printed: `fixture 'device' not found`, `No module named
'tests.training.conftest_mock_utils'`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gates.code.interpreter import clean_env
from gates.engine.process_watch import run_watched

TIMEOUT_S = 600.0
TAIL_CHARS = 6000
# "E   fixture 'device' not found", "E   ModuleNotFoundError: No module named 'x'"
_ERROR_LINE = re.compile(r"^E\s+(\S.*)$")
_SUMMARY_LINE = re.compile(r"^(ERROR|FAILED) (\S+)( - (.*))?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    """What plain pytest said about the tests mutmut could not run."""

    returncode: int
    first_error: str  # the first `E ...` line, or the first ERROR/FAILED summary line
    output_tail: str
    command: str


def first_error(output: str) -> str:
    """The line that explains the failure best: pytest's first `E` line, else its summary."""
    lines = output.splitlines()
    for line in lines:
        match = _ERROR_LINE.match(line.rstrip())
        if match:
            return match.group(1).strip()
    for line in lines:
        match = _SUMMARY_LINE.match(line.rstrip())
        if match:
            return (match.group(4) or match.group(2)).strip()
    return ""


def diagnose(copy_root: Path, *, python: str, tests: Sequence[str], deselect: Sequence[str],
             pytest_args: Sequence[str], log: Path, timeout_s: float = TIMEOUT_S) -> Diagnosis:
    """Run the selected tests with plain pytest where mutmut ran them; keep what it says."""
    cwd = copy_root / "mutants" if (copy_root / "mutants").is_dir() else copy_root
    argv = [python, "-m", "pytest", "--rootdir=.", "-x", "-q", "--tb=short", "-p", "no:cacheprovider",
            "-p", "no:randomly", *pytest_args, *[arg for node in deselect for arg in ("--deselect", node)],
            *tests]
    env = clean_env({"MUTANT_UNDER_TEST": "", "PY_IGNORE_IMPORTMISMATCH": "1"})
    watched = run_watched(argv, cwd=cwd, log_path=log, timeout_s=timeout_s, env=env)
    tail = watched.output_tail(TAIL_CHARS)
    return Diagnosis(returncode=watched.returncode, first_error=first_error(tail), output_tail=tail,
                     command=" ".join(argv))
