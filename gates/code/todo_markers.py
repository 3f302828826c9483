"""TODO-style markers in Python comments, found with `tokenize`, not regexes over text.

A comment is what the tokenizer calls a COMMENT: "TODO" inside a string or
docstring is not one. Explicit markers (TODO, FIXME, HACK, XXX, PLACEHOLDER,
upper case) have confidence 1.0; heuristic phrases ("for now", "temporary",
"simplified", "stub", "not implemented") less. A marker is blocking only when
tagged explicitly, `TODO(blocker)` or `FIXME[blocker]` (the tags are a
setting), or when its marker is configured as blocking; the word "critical"
in a comment means nothing.

Words, not substrings: a marker inside a file name (`.placeholder`,
`TODO.md`, `build/stub.py`) marks nothing, and a heuristic phrase that is
denied ("not a placeholder", "not a temporary fix") marks nothing either.

`# readiness: ignore[todo] tracked in #12` on the same line suppresses the
finding; a suppression without a reason is not honoured and is reported.
Only files whose raw text has a candidate word after a `#` are tokenized,
and only in windows: from the top-level statement enclosing each candidate
line to that line (`gates.code.source_index`), falling back to the whole file when
a window does not tokenize. That keeps the scan fast on large trees.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Callable

from gates.code.source_index import SourceIndex

EXPLICIT = ("TODO", "FIXME", "HACK", "XXX", "PLACEHOLDER")
# A word, not part of a file name or path: no `.`, `/` or `\` glued before
# it, no extension after it (a full stop ends a sentence; "Temporary/internal"
# is still prose).
_WORD_START = r"(?<![\w./\\])"
_WORD_END = r"(?!\w|\.\w)"
_EXPLICIT = re.compile(_WORD_START + r"(TODO|FIXME|HACK|XXX|PLACEHOLDER)" + _WORD_END
                       + r"(?:\s*[(\[]([^)\]]*)[)\]])?")
# "not a placeholder", "isn't temporary", "no longer a stub", "never simplified"
_DENIED = re.compile(r"(?:\bnot|n't|\bno longer|\bnever)\s+(?:(?:just|merely|really|meant\s+as)\s+)?"
                     r"(?:(?:a|an|the|any)\s+)?$", re.I)


def _word(pattern: str) -> re.Pattern[str]:
    return re.compile(_WORD_START + pattern + _WORD_END, re.I)


HEURISTICS: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (_word(r"not (?:yet )?implemented"), "not implemented", 0.8),
    (_word(r"placeholder"), "placeholder", 0.7),
    (_word(r"for now"), "for now", 0.6),
    (_word(r"temporar(?:y|ily)"), "temporary", 0.6),
    (_word(r"stub(?:bed|s)?"), "stub", 0.5),
    (_word(r"simplified"), "simplified", 0.5),
)
# Words that make a function returning a constant a placeholder (`gates.code.stubs`).
PLACEHOLDER_HINT = _word(r"(?:placeholders?|stub(?:bed|s)?|not (?:yet )?implemented|TODO|FIXME|dummy)")
_SUPPRESS = re.compile(r"readiness:\s*ignore\[([a-z_, ]+)\]\s*(.*)")
# A `#` and then, on the same line, a word a finding needs: a necessary
# condition for a comment to hold a marker, checked in C before tokenizing.
CANDIDATE = re.compile(r"#[^\n]*?(?:TODO|FIXME|HACK|XXX|PLACEHOLDER|for now|temporar|simplified"
                       r"|stub|implemented|readiness:)", re.I)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One TODO marker or stub. `label` is the marker, phrase or stub kind."""

    path: str
    line: int
    kind: str  # "todo" or "stub"
    label: str
    text: str
    confidence: float
    blocking: bool = False
    suppressed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    kinds: frozenset[str]
    reason: str


def comments(text: str, last_line: int | None = None) -> list[tuple[int, str]] | None:
    """(line, comment text) of every comment up to `last_line`; None if it does not tokenize."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if last_line is not None and token.start[0] > last_line:
                break  # no candidate further down: the rest cannot hold a finding
            if token.type == tokenize.COMMENT:
                found.append((token.start[0], token.string))
    except (tokenize.TokenError, SyntaxError):
        return None
    return found


def _window_comments(lines: list[str], start: int, end: int) -> list[tuple[int, str]] | None:
    """Comments of lines[start:end + 1], numbered as in the file; None if it breaks."""
    found = []
    source = "\n".join(lines[start:end + 1]) + "\n"
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                found.append((token.start[0] + start, token.string))
    except tokenize.TokenError:
        pass  # the window ends inside a bracket or string: what came before stands
    except SyntaxError:
        return None
    return found


def candidate_comments(text: str, index_of: Callable[[], SourceIndex]) -> list[tuple[int, str]] | None:
    """(line, comment) of the comments that may hold a finding; None if the file does not tokenize."""
    offsets = [match.start() for match in CANDIDATE.finditer(text)]
    if not offsets:
        return []
    index = index_of()
    if not index.reliable:
        return comments(text, index.line_of(offsets[-1]) + 1)
    windows: list[list[int]] = []
    for line in sorted({index.line_of(offset) for offset in offsets}):
        start = index.statement_start(line)
        if windows and start <= windows[-1][1] + 1:
            windows[-1][1] = line
        else:
            windows.append([start, line])
    found: list[tuple[int, str]] = []
    for start, end in windows:
        part = _window_comments(index.lines, start, end)
        if part is None:
            return comments(text, windows[-1][1] + 1)
        found += part
    return found


def affirmed(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of `pattern` in `text` that the words before it do not deny."""
    for match in pattern.finditer(text):
        if not _DENIED.search(text[:match.start()]):
            return match
    return None


def suppression_of(comment: str) -> Suppression | None:
    match = _SUPPRESS.search(comment)
    if match is None:
        return None
    kinds = frozenset(k.strip() for k in match.group(1).split(",") if k.strip())
    return Suppression(kinds=kinds, reason=match.group(2).strip())


def classify(comment: str, *, blocking_tags: frozenset[str],
             blocking_markers: frozenset[str]) -> tuple[str, float, bool] | None:
    """(label, confidence, blocking) for a comment, or None if it marks nothing."""
    body = _SUPPRESS.sub("", comment)
    explicit = affirmed(_EXPLICIT, body)
    if explicit:
        marker, tags = explicit.group(1), explicit.group(2) or ""
        tagged = {t.strip().lower() for t in re.split(r"[,\s]+", tags) if t.strip()}
        return marker, 1.0, bool(tagged & blocking_tags) or marker in blocking_markers
    for pattern, label, confidence in HEURISTICS:
        if affirmed(pattern, body):
            return label, confidence, False
    return None


def scan_comments(path: str, text: str, *, blocking_tags: frozenset[str],
                  blocking_markers: frozenset[str], index_of: Callable[[], SourceIndex] | None = None,
                  ) -> tuple[list[Finding], dict[int, Suppression]] | None:
    """Findings and suppressions (by line) in one file; None if it does not tokenize."""
    found = candidate_comments(text, index_of or (lambda: SourceIndex(text)))
    if found is None:
        return None
    findings, suppressions = [], {}
    for line, comment in found:
        suppression = suppression_of(comment)
        if suppression is not None:
            suppressions[line] = suppression
        kind = classify(comment, blocking_tags=blocking_tags, blocking_markers=blocking_markers)
        if kind is not None:
            label, confidence, blocking = kind
            findings.append(Finding(path=path, line=line, kind="todo", label=label,
                                    text=comment.lstrip("#").strip()[:200],
                                    confidence=confidence, blocking=blocking))
    return findings, suppressions
