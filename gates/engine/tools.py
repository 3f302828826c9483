"""The installed version of a tool, read from package metadata (nothing is imported).

Reading metadata rather than importing keeps a broken install (a coremltools
that fails on import) from taking down the gate, the cache key or the
provenance that asks. `pipeline` keeps its own copy, since it imports
nothing of the project.
"""

from __future__ import annotations

from importlib import metadata


def installed_version(name: str) -> str | None:
    """The version of distribution `name`, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
