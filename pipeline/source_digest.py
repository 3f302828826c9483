"""A hash of the harness's own Python sources, for the keys of what it caches.

A cached result or package is only as current as the code that made it: a
change to that code, version number moved or not, changes these digests.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

HARNESS_PACKAGES = ("gates", "pipeline", "readiness", "reports")  # as pyproject.toml installs them
HARNESS_ROOT = Path(__file__).resolve().parents[1]  # the folder holding them, checkout or site-packages


def sources_digest(root: Path, packages: tuple[str, ...]) -> str:
    """sha256 of every Python source of `packages` under `root`, names included."""
    digest = hashlib.sha256()
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


@functools.cache
def harness_digest() -> str:
    """`sources_digest` of every package of the running harness, once per process."""
    return sources_digest(HARNESS_ROOT, HARNESS_PACKAGES)


@functools.cache
def pipeline_digest() -> str:
    """`sources_digest` of the model pipeline alone (what builds packages), once per process."""
    return sources_digest(HARNESS_ROOT, ("pipeline",))
