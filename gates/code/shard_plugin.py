"""pytest plugin that keeps the test files of one shard: readiness loads it as `-p readiness_shard`.

It runs inside the project's own interpreter, so it needs nothing but the
standard library and pytest; suite_health copies this file into the run's
work folder and puts that folder on PYTHONPATH. Settings come from the
environment:

- `READINESS_SHARD`: "i/N";
- `READINESS_SHARD_DURATIONS`: optional JSON file {test file: seconds};
- `READINESS_SHARD_RECORD`: where to write the partition it used.

After every other plugin has filtered the collection (`-k`, `--deselect`),
test files are dealt to shards heaviest first, each to the lightest shard so
far; a file's weight is its recorded duration, or, for a file without one,
its test count times the mean seconds per test of the known files (one
second a test when nothing is known). Every shard of a matrix collects the
same files and reads the same durations, so all compute the same partition
without talking; the record's digest lets the merge check that they did.
With pytest-xdist every worker computes the same partition.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pytest


def balanced(weights: Mapping[str, float], count: int) -> dict[str, int]:
    """Assign each key to one of `count` shards (1-based): heaviest first, to the lightest shard.

    Ties go by name, then by the lower shard, so the result depends on the
    weights alone.
    """
    loads = [0.0] * count
    assigned: dict[str, int] = {}
    for key in sorted(weights, key=lambda k: (-weights[k], k)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        assigned[key] = lightest + 1
        loads[lightest] += weights[key]
    return assigned


def file_weights(tests_per_file: Mapping[str, int], durations: Mapping[str, float]) -> dict[str, float]:
    """Seconds per file: recorded ones, others estimated from their test count."""
    known = {f: float(durations[f]) for f in tests_per_file if f in durations}
    known_tests = sum(tests_per_file[f] for f in known)
    per_test = sum(known.values()) / known_tests if known_tests and sum(known.values()) > 0 else 1.0
    return {f: known.get(f, per_test * n) for f, n in tests_per_file.items()}


def partition_digest(assigned: Mapping[str, int]) -> str:
    text = json.dumps(sorted(assigned.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, sort_keys=True)
    os.replace(tmp, path)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    spec = os.environ.get("READINESS_SHARD", "")
    if not spec:
        return
    index, count = (int(part) for part in spec.split("/"))
    durations_file = os.environ.get("READINESS_SHARD_DURATIONS", "")
    durations = json.loads(Path(durations_file).read_text(encoding="utf-8")) if durations_file else {}
    tests_per_file: dict[str, int] = {}
    for item in items:
        name = item.nodeid.split("::", 1)[0]
        tests_per_file[name] = tests_per_file.get(name, 0) + 1
    assigned = balanced(file_weights(tests_per_file, durations), count)
    kept = [item for item in items if assigned[item.nodeid.split("::", 1)[0]] == index]
    dropped = [item for item in items if assigned[item.nodeid.split("::", 1)[0]] != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    record = os.environ.get("READINESS_SHARD_RECORD", "")
    if record:
        _write_atomically(Path(record), {"shard": spec, "assigned": assigned, "digest": partition_digest(assigned),
                                         "tests": len(kept), "files": sorted(f for f, s in assigned.items()
                                                                             if s == index)})
