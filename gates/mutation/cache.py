"""Per-mutant results kept between runs, so an unchanged function is not re-tested.

A result is reused only while everything that decided it is unchanged:

- the function's own source (an AST hash, so comments and blank lines do not
  count) and the module around it with every function removed (a changed
  constant or import re-tests the whole module);
- the run's fingerprint (mutmut version, pytest arguments, deselected tests,
  timeout multiplier);
- the tests. A killed or timed-out mutant can only come back if a test that
  reached its function changed, so it is keyed on those test files. A
  survivor or an unreached mutant can be caught by any new or edited test,
  so it is keyed on every test file (and on all of them whenever the reach
  is unknown).

One JSON file per source file, written atomically, under the cache folder
(by default `<project>/.readiness/mutation-cache`):

    {"version": 1, "functions": {"x_clamp": {"hash": "...", "context": "...",
      "fingerprint": "...", "names": [...], "reach": ["tests/test_core.py"],
      "reach_hash": "...", "tests_hash": "...",
      "results": {"mathlib.core.x_clamp__mutmut_1": {"exit_code": 0, "line": 7, "diff": "..."}}}}}
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from gates.mutation.runner import BUCKET_BY_EXIT_CODE

VERSION = 1
REACH_KEYED = frozenset({"killed", "timeout"})


def digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def function_hashes(source: str) -> dict[str, str]:
    """Mangled function key (as mutmut names it) -> hash of its AST."""
    hashes: dict[str, str] = {}

    def visit(body: list[ast.stmt], class_name: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"xǁ{class_name}ǁ{node.name}" if class_name else f"x_{node.name}"
                hashes[key] = digest([ast.dump(node, annotate_fields=False)])
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{class_name}.{node.name}" if class_name else node.name)

    visit(ast.parse(source).body, "")
    return hashes


def function_lines(source: str) -> dict[str, int]:
    """Mangled function key -> line of its `def` in the file."""
    lines: dict[str, int] = {}

    def visit(body: list[ast.stmt], class_name: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines[f"xǁ{class_name}ǁ{node.name}" if class_name else f"x_{node.name}"] = node.lineno
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{class_name}.{node.name}" if class_name else node.name)

    visit(ast.parse(source).body, "")
    return lines


class _DropFunctions(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.AST) -> None:
        return None

    visit_AsyncFunctionDef = visit_FunctionDef


def context_hash(source: str) -> str:
    """Hash of the module with every function removed: what all its functions share."""
    return digest([ast.dump(_DropFunctions().visit(ast.parse(source)), annotate_fields=False)])


def files_hash(root: Path, files: Iterable[str]) -> str:
    """Hash of the names and contents of `files` (relative to root); missing ones count."""
    parts: list[str] = []
    for rel in sorted(set(files)):
        path = root / rel
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<missing>"
        parts += [rel, content]
    return digest(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedResult:
    exit_code: int
    line: int | None
    diff: str

    @property
    def bucket(self) -> str:
        return BUCKET_BY_EXIT_CODE.get(self.exit_code, "suspicious")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileLookup:
    """What the cache knows about one source file as it is now."""

    names: tuple[str, ...] | None  # every mutant of the file, if known for all its functions
    results: Mapping[str, CachedResult]  # still-valid results by mutant name


class MutationCache:
    """Reads and writes per-mutant results for one project and run fingerprint."""

    def __init__(self, folder: Path, *, root: Path, fingerprint: str, test_files: Iterable[str]) -> None:
        self.folder = folder
        self.root = root
        self.fingerprint = fingerprint
        self.test_files = tuple(sorted(set(test_files)))
        self.tests_hash = files_hash(root, self.test_files)
        self._reach_hashes: dict[tuple[str, ...], str] = {}

    def _file(self, path: str) -> Path:
        return self.folder / (path.replace("/", "__").replace("\\", "__") + ".json")

    def _load(self, path: str) -> dict[str, Any]:
        try:
            data = json.loads(self._file(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data.get("functions", {}) if data.get("version") == VERSION else {}

    def _reach_hash(self, reach: Iterable[str]) -> str:
        key = tuple(sorted(reach))
        if key not in self._reach_hashes:
            self._reach_hashes[key] = files_hash(self.root, key) if key else self.tests_hash
        return self._reach_hashes[key]

    def lookup(self, path: str, source: str) -> FileLookup:
        hashes, context = function_hashes(source), context_hash(source)
        stored = self._load(path)
        names: list[str] | None = []
        results: dict[str, CachedResult] = {}
        for function, digest in hashes.items():
            entry = stored.get(function)
            if not entry or (entry["hash"], entry["context"], entry["fingerprint"]) != (
                    digest, context, self.fingerprint):
                names = None
                continue
            if names is not None:
                names += entry["names"]
            reach_ok = entry["reach_hash"] == self._reach_hash(entry["reach"])
            for name, record in entry["results"].items():
                result = CachedResult(exit_code=record["exit_code"], line=record.get("line"),
                                      diff=record.get("diff", ""))
                keyed_on_reach = result.bucket in REACH_KEYED and entry["reach"]
                if (reach_ok if keyed_on_reach else entry["tests_hash"] == self.tests_hash):
                    results[name] = result
        return FileLookup(names=None if names is None else tuple(sorted(names)), results=results)

    def store(self, path: str, source: str, names: Iterable[str],
              results: Mapping[str, CachedResult], reach: Mapping[str, Iterable[str]]) -> None:
        """Record the mutants of one file and the results decided for them.

        `names` are all mutants of the file; `results` the decided ones (new
        and still-valid cached ones); `reach` maps function key -> test files.
        """
        hashes, context = function_hashes(source), context_hash(source)
        stored = self._load(path)
        by_function: dict[str, list[str]] = {f: [] for f in hashes}
        for name in names:
            by_function.setdefault(name.partition("__mutmut_")[0].rpartition(".")[2], []).append(name)
        functions: dict[str, Any] = {}
        for function, digest in hashes.items():
            old = stored.get(function, {})
            files = sorted(set(reach.get(function, ())) or set(old.get("reach", [])))
            functions[function] = {
                "hash": digest, "context": context, "fingerprint": self.fingerprint,
                "names": sorted(by_function.get(function, [])), "reach": files,
                "reach_hash": self._reach_hash(files), "tests_hash": self.tests_hash,
                "results": {n: _record(results[n]) for n in sorted(by_function.get(function, []))
                            if n in results},
            }
        self._write(path, {"version": VERSION, "functions": functions})

    def _write(self, path: str, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
        os.replace(tmp, self._file(path))


def _record(result: CachedResult) -> dict[str, Any]:
    record: dict[str, Any] = {"exit_code": result.exit_code}
    if result.bucket != "killed":
        record.update(line=result.line, diff=result.diff)
    return record
