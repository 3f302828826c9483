import pytest

from textstats import format_summary, summarize

TEXT = "The cat sat on the mat. Dr. Smith saw it! Did the cat run? Yes."

pytestmark = pytest.mark.integration


def test_summary_of_known_text():
    assert summarize(TEXT) == {
        "words": 15,
        "sentences": 4,
        "type_token_ratio": 0.8,
        "average_word_length": 2.93,
        "reading_ease": 118.43,
        "top_words": [("cat", 2), ("did", 1), ("dr", 1)],
    }


def test_summary_top_count_is_respected():
    assert summarize(TEXT, top=1)["top_words"] == [("cat", 2)]


def test_formatted_summary_lines():
    assert format_summary(summarize(TEXT)) == "\n".join([
        "words:       15",
        "sentences:   4",
        "richness:    0.800",
        "word length: 2.93",
        "ease:        118.43",
        "top words:   cat (2), did (1), dr (1)",
    ])


def test_formatted_summary_of_empty_text():
    assert format_summary(summarize("")) == "\n".join([
        "words:       0",
        "sentences:   0",
        "richness:    0.000",
        "word length: 0.00",
        "ease:        n/a",
        "top words:   -",
    ])
