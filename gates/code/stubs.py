"""Functions that do nothing yet, found through `ast`.

A stub is a function whose body, after an optional docstring, is only
`raise NotImplementedError`, `pass`, `...`, nothing, or a placeholder
return (`return None` / a constant / an empty container) in a function whose
comments or docstring say it is a placeholder (as a word, and not denied:
"not a placeholder" and a `.placeholder` file name do not count).
Legitimate empty bodies are not stubs: abstract methods, `@overload`
signatures, methods of a `Protocol` class, and anything in a `.pyi` file.

Parsing is the expensive part on large trees, so it is narrowed twice: a
line-level pre-filter finds candidate stub statements (a stub statement
right after a header or a docstring, or a docstring followed by a dedent),
and only the top-level definitions enclosing those candidates are parsed,
falling back to the whole file when a window does not parse on its own.
Only statement lists are walked, never expressions.
"""

from __future__ import annotations

import ast
import re
from typing import Callable

from gates.code.source_index import SourceIndex
from gates.code.todo_markers import PLACEHOLDER_HINT, Finding, affirmed

_LEGIT_DECORATORS = frozenset({"abstractmethod", "abstractproperty", "abstractclassmethod",
                               "abstractstaticmethod", "overload"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_STUB_LINE = re.compile(
    r"^([ \t]*)(?:pass|\.\.\.|raise[ \t]+NotImplementedError\b.*|return(?:[ \t]+(?:None|True|False"
    r"|-?[\d.]+|\"[^\"\n]*\"|'[^'\n]*'|\[\]|\{\}|\(\)|set\(\)))?)[ \t]*(?:#.*)?$"
    r"|^[^#\n]*:[ \t]*(?:pass|\.\.\.|raise[ \t]+NotImplementedError\b.*)[ \t]*(?:#.*)?$",
    re.M)
_HEADER_END = re.compile(r":[ \t]*(?:#.*)?$")
_DOC_END = re.compile(r"^([ \t]*)(?:\S.*)?(?:\"\"\"|\'\'\')[ \t]*$", re.M)
_NOT_HEADER = re.compile(r"[ \t]*(?:except|else|elif|if|for|while|with|try|finally|case|match"
                         r"|async[ \t]+for|async[ \t]+with)\b")
_NESTED_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_legit(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_protocol: bool) -> bool:
    return in_protocol or any(_name(d) in _LEGIT_DECORATORS for d in fn.decorator_list)


def _is_placeholder_value(value: ast.expr | None) -> bool:
    if value is None or isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return not value.elts
    return isinstance(value, ast.Dict) and not value.keys


def stub_kind(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> tuple[str, float] | None:
    """(kind, confidence) when the function is a stub, else None."""
    body = fn.body
    docstring = ast.get_docstring(fn, clean=False) or ""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return "docstring only", 0.8
    if len(body) != 1:
        return None
    only = body[0]
    if isinstance(only, ast.Raise) and only.exc is not None and _name(only.exc) == "NotImplementedError":
        return "raise NotImplementedError", 0.95
    if isinstance(only, ast.Pass):
        return "pass", 0.8
    if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant) and only.value.value is Ellipsis:
        return "...", 0.8
    if isinstance(only, ast.Return) and _is_placeholder_value(only.value):
        source = "\n".join(lines[fn.lineno - 1:(fn.end_lineno or fn.lineno)])
        if affirmed(PLACEHOLDER_HINT, docstring) or affirmed(PLACEHOLDER_HINT, source.split(":", 1)[-1]):
            return "placeholder return", 0.7
    return None


def _walk(body: list[ast.stmt], path: str, lines: list[str], in_protocol: bool,
          out: list[tuple[Finding, int]]) -> None:
    for node in body:
        if isinstance(node, _FUNCTIONS):
            kind = None if _is_legit(node, in_protocol) else stub_kind(node, lines)
            if kind is not None:
                out.append((Finding(path=path, line=node.lineno, kind="stub", label=kind[0],
                                    text=f"{node.name}()", confidence=kind[1]),
                            node.end_lineno or node.lineno))
            _walk(node.body, path, lines, False, out)
        elif isinstance(node, ast.ClassDef):
            protocol = any(_name(base) == "Protocol" for base in node.bases)
            _walk(node.body, path, lines, protocol, out)
        else:
            for field in _NESTED_BODIES:
                for child in getattr(node, field, None) or ():
                    _walk(getattr(child, "body", [child]) if isinstance(child, (ast.excepthandler, ast.match_case))
                          else [child], path, lines, False, out)


def _previous_code_line(lines: list[str], index: int) -> str:
    for line in reversed(lines[max(0, index - 50):index]):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return line.rstrip()
    return ""


def candidate_lines(index_: SourceIndex) -> list[int]:
    """0-based indexes of lines that may belong to a stub (pre-filter, no false negatives intended)."""
    text, lines = index_.text, index_.lines
    found = []
    for match in _STUB_LINE.finditer(text):
        index = index_.line_of(match.start())
        if match.group(1) is None:
            found.append(index)  # one-line `def f(): ...`
            continue
        previous = _previous_code_line(lines, index)
        if previous.endswith(('"""', "'''")) or (_HEADER_END.search(previous)
                                                    and not _NOT_HEADER.match(previous)):
            found.append(index)
    for match in _DOC_END.finditer(text):
        index = index_.line_of(match.start())
        indent = len(match.group(1))
        following = next((line for line in lines[index + 1:index + 50]
                          if line.strip() and not line.lstrip().startswith("#")), "")
        if not following or len(following) - len(following.lstrip()) < indent:
            found.append(index)
    return sorted(set(found))


def _merged(windows: set[tuple[int, int] | None]) -> list[tuple[int, int]] | None:
    """Overlapping windows joined, so no line is parsed twice; None if one is missing."""
    known = [w for w in windows if w is not None]
    if len(known) < len(windows):
        return None
    merged: list[list[int]] = []
    for start, end in sorted(known):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _parse(path: str, source: str) -> ast.Module | None:
    try:
        return ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return None


def find_stubs(path: str, text: str, index_of: Callable[[], SourceIndex] | None = None,
               ) -> list[tuple[Finding, int]] | None:
    """(stub finding, last line of its function); None if the file does not parse."""
    if path.endswith(".pyi"):
        return []
    if not _STUB_LINE.search(text) and not _DOC_END.search(text):
        return []
    index = index_of() if index_of is not None else SourceIndex(text)
    lines = index.lines
    candidates = candidate_lines(index)
    if not candidates:
        return []
    windows = _merged({index.definition_window(line) for line in candidates}) if index.reliable else None
    out: list[tuple[Finding, int]] = []
    if windows is not None:
        for start, end in windows:
            # leading newlines keep the window's line numbers those of the file
            tree = _parse(path, "\n" * start + "\n".join(lines[start:end]))
            if tree is None:
                break
            _walk(tree.body, path, lines, False, out)
        else:
            return list({(f.line, f.label): (f, last) for f, last in out}.values())
        out = []
    tree = _parse(path, text)
    if tree is None:
        return None
    _walk(tree.body, path, lines, False, out)
    return out
