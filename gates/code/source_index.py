"""Where top-level statements start in a Python file, found once per file in C.

The hygiene scan must read a million lines in seconds, while `tokenize` and
`ast` are slow when run on every line of every file. Both are therefore run
on windows: from the top-level statement that encloses a candidate line (a
line at column 0 that starts a definition, an import or a block, outside any
triple-quoted string) to the candidate. A window that does not tokenize or
parse on its own makes the caller fall back to the whole file, so a wrong
guess costs time, not correctness.
"""

from __future__ import annotations

import bisect
import re
from itertools import accumulate

_TOP_START = re.compile(r"^(?:@\w|def\s+\w|async\s+def\s|class\s+\w|import\s+\w"
                        r"|from\s+[\w.]+\s+import\b|if\s|for\s|while\s|try\s*:|with\s)", re.M)
_TOP_DEF = re.compile(r"^(?:def\s+\w|async\s+def\s|class\s+\w)", re.M)
_TOP_PLAIN = re.compile(r"^[A-Za-z_]", re.M)
_TOP_CODE = re.compile(r"^[A-Za-z_@]", re.M)
# Triple quotes next to another quote or after a `#` make quote parity unreliable.
_TRIPLE = "(?:" + '"' * 3 + "|" + "'" * 3 + ")"
_ODD_QUOTES = re.compile("['\"]" + _TRIPLE + "|" + _TRIPLE + "['\"]|#[^\n]*" + _TRIPLE)


class SourceIndex:
    """Line offsets and top-level starts of one file's text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reliable = _ODD_QUOTES.search(text) is None  # else callers use the whole file
        self.lines = text.split("\n")
        self._starts = [0, *accumulate(len(line) + 1 for line in self.lines[:-1])]
        self._top = self._lines_of(_TOP_START)
        self._defs = self._lines_of(_TOP_DEF)
        self._code = self._lines_of(_TOP_CODE)
        self._plain = self._lines_of(_TOP_PLAIN)

    def line_of(self, offset: int) -> int:
        """0-based line index of a character offset."""
        return bisect.bisect_right(self._starts, offset) - 1

    def _lines_of(self, pattern: re.Pattern[str]) -> list[int]:
        """Lines where `pattern` matches outside triple-quoted strings (by quote parity)."""
        found, previous, double, single = [], 0, 0, 0
        for match in pattern.finditer(self.text):
            offset = match.start()
            double += self.text.count('"""', previous, offset)
            single += self.text.count("'''", previous, offset)
            previous = offset
            if double % 2 == 0 and single % 2 == 0:
                found.append(self.line_of(offset))
        return found

    def statement_start(self, index: int) -> int:
        """The top-level statement start at or before line `index` (0 if none)."""
        at = bisect.bisect_right(self._top, index) - 1
        return self._top[at] if at >= 0 else 0

    def definition_window(self, index: int) -> tuple[int, int] | None:
        """[start, end) lines around the top-level def/class enclosing `index`.

        The window opens at the top-level statement before that definition,
        so its decorators come along whatever comments or continuation lines
        sit between them, and closes at the next top-level line.
        """
        at = bisect.bisect_right(self._defs, index) - 1
        if at < 0:
            return None
        before = bisect.bisect_left(self._plain, self._defs[at]) - 1
        start = self._plain[before] if before >= 0 else 0
        after = bisect.bisect_right(self._code, index)
        end = self._code[after] if after < len(self._code) else len(self.lines)
        return start, end
