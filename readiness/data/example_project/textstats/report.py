"""A summary of one text: the numbers a reader of the report wants together."""

from __future__ import annotations

from typing import Any

from textstats.metrics import (average_word_length, flesch_reading_ease, top_words,
                               type_token_ratio)
from textstats.segment import split_sentences, split_words

STOPWORDS = frozenset({"a", "an", "and", "the", "of", "to", "in", "is", "it"})


def summarize(text: str, *, top: int = 3) -> dict[str, Any]:
    """Counts, vocabulary richness, readability and the most frequent words."""
    words = split_words(text)
    return {
        "words": len(words),
        "sentences": len(split_sentences(text)),
        "type_token_ratio": round(type_token_ratio(words), 3),
        "average_word_length": round(average_word_length(words), 2),
        "reading_ease": flesch_reading_ease(text),
        "top_words": top_words(words, top, stopwords=STOPWORDS),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Render a summary as aligned `key: value` lines."""
    ease = summary["reading_ease"]
    top = ", ".join(f"{word} ({count})" for word, count in summary["top_words"]) or "-"
    lines = [
        f"words:       {summary['words']}",
        f"sentences:   {summary['sentences']}",
        f"richness:    {summary['type_token_ratio']:.3f}",
        f"word length: {summary['average_word_length']:.2f}",
        f"ease:        {'n/a' if ease is None else f'{ease:.2f}'}",
        f"top words:   {top}",
    ]
    return "\n".join(lines)
