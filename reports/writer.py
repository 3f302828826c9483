"""Writing a rendered report: atomically, or to stdout for `-`.

A report is written to a temporary file beside its target and renamed into
place, so an interrupted run never leaves a half-written file; parent folders
are created.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def write_text(text: str, target: str | Path) -> Path | None:
    """Write `text` to `target` (`-` is stdout); returns the path written."""
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    path = Path(target)
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder, not a file", str(path))
        with path.open("w", encoding="utf-8") as handle:  # a device or a pipe: never replace it
            handle.write(text)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
