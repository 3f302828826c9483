"""Splitting text into sentences and words.

Sentence ends are `.`, `!` and `?` followed by whitespace and a capital
letter or digit, except after a known abbreviation ("Dr. Smith" is one
sentence). Words are runs of letters, digits and inner apostrophes or
hyphens, so "don't" and "well-known" stay whole.
"""

from __future__ import annotations

import re

from textstats.normalize import normalize

ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "prof", "e.g", "i.e", "etc", "vs"})

_WORD = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")
_BOUNDARY = re.compile(r"([.!?])\s+(?=[A-Z0-9\"'])")


def split_words(text: str) -> list[str]:
    """The words of `text` in order, punctuation dropped."""
    return _WORD.findall(normalize(text))


def _ends_with_abbreviation(fragment: str) -> bool:
    last = fragment.rsplit(" ", 1)[-1].rstrip(".").casefold()
    return last in ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each stripped, empty ones dropped."""
    text = normalize(text)
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(1)
        candidate = text[start:end]
        if match.group(1) == "." and _ends_with_abbreviation(candidate):
            continue
        sentences.append(candidate.strip())
        start = match.end()
    # a boundary is only taken before a capital or digit, so the tail is never empty
    sentences.append(text[start:].strip())
    return sentences
