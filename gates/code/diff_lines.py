"""Lines added or changed since a git ref, for diff coverage.

`git diff --unified=0 --relative <base>` run in the project root lists, per
file (relative to the root), the hunks of the working tree against the base;
the new side of each hunk (`+start,count`) is what changed:

    >>> parse_diff("+++ b/pkg/a.py\\n@@ -3,0 +4,2 @@\\n+x\\n+y\\n")
    {'pkg/a.py': {4, 5}}
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class DiffError(Exception):
    """git could not produce the diff; the message says why."""


def parse_diff(text: str) -> dict[str, set[int]]:
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            current = None if target == "/dev/null" else changed.setdefault(target[2:], set())
        elif current is not None:
            match = _HUNK.match(line)
            if match:
                start, count = int(match.group(1)), int(match.group(2) or 1)
                current.update(range(start, start + count))
    return {path: lines for path, lines in changed.items() if lines}


def changed_lines(root: Path, base: str, paths: tuple[str, ...]) -> dict[str, set[int]]:
    """Changed lines per file under `paths` since `base`; raises DiffError."""
    argv = ["git", "-C", str(root), "diff", "--unified=0", "--no-color", "--no-ext-diff",
            "--relative", base, "--", *paths]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiffError(f"git diff against {base!r} in {root} failed: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise DiffError(f"git diff against {base!r} in {root} failed: {reason}")
    return parse_diff(done.stdout)
