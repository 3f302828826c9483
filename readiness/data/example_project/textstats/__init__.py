"""textstats: small, dependency-free statistics over English text.

The example project Readiness assesses in its demo: a normaliser, a
segmenter, readability metrics and a summary that ties them together.
"""

from textstats.metrics import (average_word_length, flesch_reading_ease, syllable_count,
                               top_words, type_token_ratio)
from textstats.normalize import normalize
from textstats.report import format_summary, summarize
from textstats.segment import split_sentences, split_words

__all__ = [
    "average_word_length", "flesch_reading_ease", "format_summary", "normalize",
    "split_sentences", "split_words", "summarize", "syllable_count", "top_words",
    "type_token_ratio",
]
