"""Writing a rendered report: atomically, or to stdout for `-`.

A report is written to a temporary file beside its target and renamed into
place, so an interrupted run never leaves a half-written file; parent folders
are created. The temporary file is opened the way `open()` opens a new file
(mode 0666 less the umask), not with `tempfile.mkstemp`, whose 0600 would
survive the rename and leave a report nobody else can read; replacing an
existing file keeps that file's mode, as writing into it would.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

_NEW_FILE_MODE = 0o666  # what open() asks for; the kernel removes the umask bits
_ATTEMPTS = 100


def _open_temporary(path: Path) -> tuple[int, Path]:
    """A new, exclusively created file beside `path`, with open()'s mode."""
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(17, "no free temporary name", str(path.parent))


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
    existing_mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
    fd, tmp = _open_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            if existing_mode is not None:
                os.fchmod(handle.fileno(), existing_mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
