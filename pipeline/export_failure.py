"""What an exception raised while exporting or running a model says, kept whole.

torch.export reports a data-dependent guard as a long message whose first
line (`Could not guard on data-dependent expression Eq(u0, 1)`) names a
symbol, not the model line that caused it. `describe(exc)` keeps the whole
message and finds the frame of the model's own code:

    >>> failure = describe(exc)
    >>> failure.line       # one line, for a table cell
    'GuardOnDataDependentSymNode: Could not guard on ... (at my_model.py:42 in forward)'
    >>> failure.detail     # the model frame first, then the whole message
    'model code: my_model.py:42 in forward\\n\\nGuardOnDataDependentSymNode: ...'

The model frame is the innermost traceback frame outside torch, the standard
library and this harness's entry wrappers (non-strict export runs the model's
Python, so its frames are in the traceback). When the traceback has none,
torch's own "The following call raised this error" / "File ..., line N"
lines are read instead. Source files are never opened here: the line number
and function name come from the traceback, the code text only from torch's
message.
"""

from __future__ import annotations

import os
import re
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

MAX_LINE = 500
MAX_DETAIL = 8000
_TORCH_DIR = Path(torch.__file__).resolve().parent
_STDLIB_DIRS = tuple({Path(p).resolve() for p in (sysconfig.get_paths()["stdlib"],
                                                   sysconfig.get_paths()["platstdlib"])})
# the harness's own wrappers around the model's entry points
_HARNESS = tuple((Path(__file__).resolve().parent / name) for name in
                 ("export.py", "export_checks.py", "export_failure.py", "adapter.py"))
_TORCH_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """One exception: its type, whole message and the model line that raised it."""

    kind: str
    message: str
    location: str = ""  # "path/to/model.py:42 in forward", or "" when unknown

    @property
    def headline(self) -> str:
        lines = self.message.strip().splitlines()
        return lines[0].strip() if lines else ""

    @property
    def line(self) -> str:
        """One line: type, first line of the message, and where in the model."""
        where = f" (at {self.location})" if self.location else ""
        return f"{self.kind}: {self.headline}{where}"[:MAX_LINE]

    @property
    def detail(self) -> str:
        """The model frame, then the whole message (bounded)."""
        head = f"model code: {self.location}\n\n" if self.location else ""
        return (head + f"{self.kind}: {self.message.strip()}")[:MAX_DETAIL]


def describe(exc: BaseException) -> Failure:
    """The exception as a `Failure`, with the model's own frame when it can be found."""
    return Failure(kind=type(exc).__name__, message=str(exc), location=model_frame(exc))


def model_frame(exc: BaseException) -> str:
    """`file:line in function` of the innermost model frame, or ""."""
    for error in _chain(exc):
        frames = [(f.filename, f.lineno, f.name) for f in
                  traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), lookup_lines=False)]
        for filename, lineno, name in reversed(frames):
            if _is_model_file(filename):
                return f"{_shown(filename)}:{lineno} in {name}"
    return _frame_from_message(str(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_model_file(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False  # generated code: exec'd entry wrappers, torch.fx graphs
    path = Path(filename).resolve()
    if path in _HARNESS or path.is_relative_to(_TORCH_DIR):
        return False
    return not any(path.is_relative_to(d) and "site-packages" not in path.parts for d in _STDLIB_DIRS)


def _frame_from_message(message: str) -> str:
    """torch's own pointer at the user's line (strict export has no Python frame of it)."""
    _, marker, tail = message.partition("The following call raised this error:")
    found = [m for m in _TORCH_FRAME.finditer(tail if marker else message) if _is_model_file(m.group(1))]
    if not found:
        return ""
    filename, lineno, name = found[-1].groups()
    return f"{_shown(filename)}:{lineno} in {name}"


def _shown(filename: str) -> str:
    """Relative to the working directory when inside it (reports stay readable)."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith("..") else relative
