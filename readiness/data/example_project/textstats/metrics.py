"""Readability and vocabulary metrics over words and sentences.

Syllables are estimated the usual way for English: count vowel groups, drop
a silent final "e", and never return fewer than one for a word. The Flesch
reading ease is 206.835 - 1.015 * (words / sentences) - 84.6 * (syllables /
words); higher is easier.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from textstats.segment import split_sentences, split_words

_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def syllable_count(word: str) -> int:
    """Estimated syllables in one word; at least 1 for any word with a letter."""
    letters = "".join(ch for ch in word.casefold() if ch.isalpha())
    if not letters:
        return 0
    groups = len(_VOWEL_GROUPS.findall(letters))
    if letters.endswith("e") and not letters.endswith("le") and groups > 1:
        groups -= 1
    return max(groups, 1)


def type_token_ratio(words: list[str]) -> float:
    """Distinct words over all words (case-insensitive); 0.0 for no words."""
    if not words:
        return 0.0
    return len({word.casefold() for word in words}) / len(words)


def average_word_length(words: list[str]) -> float:
    """Mean number of characters per word; 0.0 for no words."""
    if not words:
        return 0.0
    return sum(len(word) for word in words) / len(words)


def flesch_reading_ease(text: str) -> float | None:
    """Flesch reading ease of `text`, rounded to 2 places; None without words."""
    words = split_words(text)
    sentences = split_sentences(text)
    if not words or not sentences:
        return None
    syllables = sum(syllable_count(word) for word in words)
    score = 206.835 - 1.015 * (len(words) / len(sentences)) - 84.6 * (syllables / len(words))
    return round(score, 2)


def top_words(words: list[str], n: int = 3, *, stopwords: Iterable[str] = ()) -> list[tuple[str, int]]:
    """The `n` most frequent words (lower-cased) with counts; ties broken alphabetically."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    skip = {word.casefold() for word in stopwords}
    counts = Counter(word.casefold() for word in words if word.casefold() not in skip)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]
