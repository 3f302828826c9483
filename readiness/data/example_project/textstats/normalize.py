"""Text normalisation: one canonical form before anything is counted."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}


def normalize(text: str, *, lower: bool = False) -> str:
    """NFKC-normalise, straighten curly quotes and collapse runs of whitespace.

    >>> normalize("  Caf\u00e9\u2019s   menu\\n")
    "Caf\u00e9's menu"
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    for curly, straight in _QUOTES.items():
        text = text.replace(curly, straight)
    text = _SPACES.sub(" ", text).strip()
    return text.casefold() if lower else text
