"""Drives mutmut 3.x in an isolated copy and reads back what it found.

mutmut is run as a subprocess of the project's interpreter (it runs the
tests in its own process, so it must see the project's packages; it also
sets the process-wide multiprocessing start method and changes directory,
neither acceptable inside the engine's threads). One process does the whole
run; in "staged" mode it pauses after writing the mutants (`mutants/<file>`
plus `.meta` and `.spans`), so the gate sees every mutant before any test
runs. mutmut skips a mutant whose exit code in `.meta` is already set, so
the gate pre-fills `.meta` (`preset`) with cached results and with "skipped"
for mutants outside the sample or the shard, then lets the same process run:
exactly the mutants still to be decided, at no extra start-up cost.

Results are read from the JSON files mutmut leaves, without importing mutmut
in this process; the diff of a mutant comes from the `.spans` index.
"""

from __future__ import annotations

import difflib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.code.interpreter import clean_env
from gates.engine import children

# The driver runs inside the copy. "staged": write the mutants, create the
# marker file, wait for one line on stdin ("run" or "stop"), then run; "run":
# the same as `mutmut run`. mutmut reports failures with exit(1).
DRIVER = """
import os, sys
import mutmut.__main__ as m
children, mode = int(sys.argv[1]), sys.argv[2]
if mode == "staged":
    os.makedirs("mutants", exist_ok=True)
    m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths()
    m.store_lines_covered_by_tests()
    m.create_mutants(children)
    open(os.path.join("mutants", "readiness-generated"), "w").close()
    if sys.stdin.readline().strip() != "run":
        sys.exit(0)
m._run([], children)
"""
MARKER = "readiness-generated"
POLL_S = 0.02
SKIPPED_EXIT_CODE = 34  # mutmut's "skipped": it will not run the mutant

# mutmut exit code -> our bucket. A crashed test process (segfault) noticed
# the mutant, as does the type checker; "suspicious" runs are reported apart.
BUCKET_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 37: "killed", -11: "killed", -9: "killed",
    36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
    0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped", None: "not_checked",
}
# (marker in mutmut's output, what it means, whether pytest itself failed: then
# a plain pytest run of the same tests shows the error mutmut kept to itself)
FAILURE_MARKERS = (
    ("failed to collect stats", "the tests failed while mutmut recorded which tests reach which function",
     True),
    ("could not find any test case for any mutant", "no selected test reaches the mutated code", False),
    ("none match any mutant key", "the tests import the code under another module path than its file path",
     False),
    ("Failed to run clean test", "the unmutated suite failed in the isolated copy", True),
    ("Unable to force test failures", "mutmut could not make the tests fail on purpose", False),
    ("Failed to collect list of tests", "pytest could not collect the tests", True),
)


class MutmutFailed(Exception):
    """mutmut stopped before deciding the mutants; the message says why.

    `pytest_failed` is True when the tests themselves failed to run (mutmut's
    setup runs): a plain pytest run of them can then say what went wrong.
    """

    def __init__(self, message: str, log_tail: str, *, pytest_failed: bool = False) -> None:
        super().__init__(message)
        self.log_tail = log_tail
        self.pytest_failed = pytest_failed
        self.diagnosis: Any = None  # a `gates.mutation.diagnosis.Diagnosis` once pytest was asked


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutant:
    """One mutant as mutmut left it: where it is and what became of it."""

    name: str  # e.g. "pkg.mod.x_clamp__mutmut_3"
    path: str  # the source file, relative to the project root
    function: str  # mangled function key, e.g. "x_clamp" or "xǁCǁm"
    function_hash: str
    exit_code: int | None

    @property
    def bucket(self) -> str:
        return BUCKET_BY_EXIT_CODE.get(self.exit_code, "suspicious")

    @property
    def function_id(self) -> str:
        return self.name.partition("__mutmut_")[0]


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip() and line.strip()[0] not in SPINNER]
    return "\n".join(kept[-lines:])


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _failure(log: Path, returncode: int) -> MutmutFailed:
    text = log.read_text(encoding="utf-8", errors="replace")
    for marker, meaning, pytest_failed in FAILURE_MARKERS:
        if marker in text:
            return MutmutFailed(f"mutmut stopped: {meaning} (exit {returncode})", _tail(log),
                                pytest_failed=pytest_failed)
    return MutmutFailed(f"mutmut exited with {returncode} before deciding the mutants", _tail(log),
                        pytest_failed=True)


class MutmutProcess:
    """One mutmut process in the copy, optionally paused after generating mutants.

    `staged=True`: `wait_generated()` returns once every mutant is written;
    the caller may then edit `.meta` and call `finish(run=...)`. Otherwise
    the process is a plain `mutmut run` and `finish()` waits for it.
    """

    def __init__(self, copy_root: Path, log: Path, *, max_children: int, timeout_s: float,
                 staged: bool, python: str = sys.executable) -> None:
        self.copy_root, self.log = copy_root, log
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        children.raise_if_stopped()  # never start mutmut once the run is being stopped
        env = {k: v for k, v in clean_env().items() if k != "MUTANT_UNDER_TEST"}
        self._out = log.open("a", encoding="utf-8")
        self._out.write(f"$ mutmut ({'staged' if staged else 'run'}) in {copy_root}\n")
        self._out.flush()
        self.proc = subprocess.Popen(
            [python, "-c", DRIVER, str(max_children), "staged" if staged else "run"],
            cwd=copy_root, stdin=subprocess.PIPE, stdout=self._out, stderr=subprocess.STDOUT,
            env=env, text=True, start_new_session=True)
        children.register(self.proc)  # an interrupted assessment stops mutmut and its workers

    def _left_s(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.kill()
            raise MutmutFailed(f"mutmut ran longer than {self.timeout_s:.0f} s and was stopped", _tail(self.log))
        return left

    def wait_generated(self) -> None:
        marker = self.copy_root / "mutants" / MARKER
        while not marker.exists():
            self._left_s()
            if self.proc.poll() is not None:
                self._close()
                raise MutmutFailed(f"mutmut could not generate mutants (exit {self.proc.returncode})",
                                   _tail(self.log))
            time.sleep(POLL_S)

    def finish(self, *, run: bool = True) -> None:
        """Let the process run the undecided mutants (or stop) and wait for it."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write("run\n" if run else "stop\n")
                self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self.proc.wait(timeout=self._left_s())
        except subprocess.TimeoutExpired:
            self.kill()
            raise MutmutFailed(f"mutmut ran longer than {self.timeout_s:.0f} s and was stopped",
                               _tail(self.log)) from None
        finally:
            self._close()
        if code != 0:
            raise _failure(self.log, code)

    def kill(self) -> None:
        """Stop the process and the workers it forked (its own process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        children.forget(self.proc)
        if not self._out.closed:
            self._out.close()


def _meta_path(copy_root: Path, path: str) -> Path:
    return copy_root / "mutants" / f"{path}.meta"


def read_mutants(copy_root: Path, paths: list[str]) -> list[Mutant]:
    """Every mutant of the given source files, as recorded in their `.meta`."""
    mutants: list[Mutant] = []
    for path in paths:
        meta_file = _meta_path(copy_root, path)
        if not meta_file.exists():
            continue  # mutmut found nothing to mutate in it
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        hashes = meta.get("hash_by_function_name", {})
        for name, exit_code in meta["exit_code_by_key"].items():
            function = name.partition("__mutmut_")[0].rpartition(".")[2]
            mutants.append(Mutant(name=name, path=path, function=function,
                                  function_hash=hashes.get(function, ""), exit_code=exit_code))
    return sorted(mutants, key=lambda m: (m.path, m.name))


def preset(copy_root: Path, exit_codes: dict[str, dict[str, int]]) -> None:
    """Set the exit code of mutants (path -> name -> code) so mutmut skips them."""
    for path, codes in exit_codes.items():
        meta_file = _meta_path(copy_root, path)
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        for name, code in codes.items():
            if name in meta["exit_code_by_key"]:
                meta["exit_code_by_key"][name] = code
        meta_file.write_text(json.dumps(meta, indent=4), encoding="utf-8")


def read_reach(copy_root: Path) -> dict[str, list[str]]:
    """Function id -> test node ids that ran it, from mutmut's stats run."""
    stats_file = copy_root / "mutants" / "mutmut-stats.json"
    if not stats_file.exists():
        return {}
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    return {key: sorted(tests) for key, tests in stats.get("tests_by_mangled_function_name", {}).items()}


def _function_text(lines: list[str], span: list[int], generated: str, original: str) -> list[str]:
    text = [line.rstrip("\n") for line in lines[span[0] - 1:span[1]]]
    while text and not text[-1].strip():
        text.pop()
    while text and not text[0].lstrip().startswith(("def ", "async def ", "@")):
        text.pop(0)  # blank lines and comments that mutmut kept above the function
    plain_name = original.split("ǁ")[-1] if "ǁ" in original else original[2:]
    return [line.replace(f"def {generated}(", f"def {plain_name}(", 1) for line in text]


def load_mutated(copy_root: Path, path: str) -> tuple[dict[str, list[int]], list[str]]:
    """The `.spans` index and the lines of one mutated file ({} and [] if unreadable)."""
    try:
        spans = json.loads((copy_root / "mutants" / f"{path}.spans").read_text(encoding="utf-8"))["spans"]
        lines = (copy_root / "mutants" / path).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, ValueError, KeyError):
        return {}, []
    return spans, lines


def diff_of(mutated: tuple[dict[str, list[int]], list[str]], mutant: Mutant,
            def_line: int | None) -> tuple[int | None, str]:
    """(line in the original file, unified diff) of one mutant; (None, "") if unreadable.

    `mutated` is `load_mutated(...)` of the mutant's file, read once per file.
    """
    spans, lines = mutated
    generated = mutant.name.rpartition(".")[2]
    original = f"{mutant.function}__mutmut_orig"
    if generated not in spans or original not in spans:
        return None, ""
    before = _function_text(lines, spans[original], original, mutant.function)
    after = _function_text(lines, spans[generated], generated, mutant.function)
    diff = "\n".join(difflib.unified_diff(before, after, mutant.path, mutant.path, lineterm="", n=1))
    changed = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), None)
    line = None if def_line is None or changed is None else def_line + changed
    return line, diff
