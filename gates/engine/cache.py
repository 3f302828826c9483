"""Gate results cached by a hash of everything they depend on.

A gate opts in with `cache_inputs(ctx)`, returning JSON-able values plus an
optional "files" list; the key also covers the gate's name and `version`, its
settings, the versions of Python, the harness and the tools it lists in
`tools`, a hash of the harness's own sources (a change to how anything is
measured measures again, version bump or not), and the keys of the results it
read. Change any of these and the key changes; change nothing and a re-run
reuses the stored result, marked `cached`. Only `pass`, `warn` and `fail` are stored: an `error` may be
transient and is always measured again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

from gates.engine.protocol import Gate, GateContext
from gates.engine.tools import installed_version
from gates.result import GateResult, Status

CACHEABLE = (Status.PASS, Status.WARN, Status.FAIL)


def file_digest(path: Path) -> str:
    """sha256 of a file, or of every file under a folder (names included)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode())
            digest.update(file_digest(child).encode())
    elif path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        digest.update(b"<missing>")
    return digest.hexdigest()


def _digest(path: Path, digests: dict[tuple[str, int, int, int], str]) -> str:
    """`file_digest`, remembered in `digests` for a file (not a folder) by its size, time and inode."""
    if not path.is_file():
        return file_digest(path)
    stat = path.stat()
    seen = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if seen not in digests:
        digests[seen] = file_digest(path)
    return digests[seen]


def _harness_digest() -> str:
    from pipeline.source_digest import harness_digest

    return harness_digest()


def _settings_json(settings: Any) -> Any:
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return dataclasses.asdict(settings)
    return repr(settings)


class ResultCache:
    """A folder of stored gate results, one JSON file per key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, gate: Gate, ctx: GateContext, results: Mapping[str, GateResult],
            digests: dict[tuple[str, int, int, int], str] | None = None) -> str | None:
        """The cache key of `gate` in `ctx`, or None if it does not cache. `digests`: the run's
        file hashes so far (a file every model gate declares, GBs of weights, is hashed once per
        run, not once per gate; a file that changes size, time or inode is hashed again)."""
        declared = gate.cache_inputs(ctx)
        if declared is None:
            return None
        inputs = dict(declared)
        files = [str(f) for f in inputs.pop("files", ())]
        deps = {d: results[d].to_dict() for d in (*gate.needs, *gate.after) if d in results}
        for dep in deps.values():
            dep.pop("duration_s", None)
            dep.pop("cached", None)
            dep.pop("peak_rss_mb", None)
        material = {
            "gate": gate.name,
            "version": gate.version,
            "settings": _settings_json(ctx.settings),
            "inputs": inputs,
            "files": {f: _digest(Path(f), {} if digests is None else digests) for f in sorted(files)},
            "deps": deps,
            "python": sys.version,
            "harness": _harness_digest(),
            "tools": {t: installed_version(t) or "absent" for t in ("readiness", *gate.tools)},
        }
        blob = json.dumps(material, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def _path(self, name: str, key: str) -> Path:
        return self.folder / f"{name}-{key[:40]}.json"

    def load(self, name: str, key: str) -> GateResult | None:
        """The stored result for `key`, marked cached; None on a miss or bad file."""
        try:
            data = json.loads(self._path(name, key).read_text(encoding="utf-8"))
            result = GateResult.from_dict(data)
        except (OSError, ValueError):
            return None
        return result.with_(cached=True, peak_rss_mb=None)  # it did not run this time

    def store(self, name: str, key: str, result: GateResult) -> None:
        if result.status not in CACHEABLE:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(result.to_dict(), handle, sort_keys=True)
            os.replace(tmp, self._path(name, key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
