import pytest

from textstats.metrics import (average_word_length, flesch_reading_ease, syllable_count,
                               top_words, type_token_ratio)


@pytest.mark.parametrize("word, expected", [
    ("cat", 1), ("table", 2), ("make", 1), ("the", 1), ("beautiful", 3),
    ("queue", 1), ("readable", 3), ("rhythm", 1), ("e", 1), ("Cake!", 1),
    ("", 0), ("123", 0), ("banana", 3), ("see", 1), ("recipe", 2),
])
def test_syllable_count_estimates(word, expected):
    assert syllable_count(word) == expected


def test_type_token_ratio_is_case_insensitive():
    assert type_token_ratio(["A", "a", "b", "c"]) == 0.75


def test_type_token_ratio_of_no_words_is_zero():
    assert type_token_ratio([]) == 0.0


def test_average_word_length():
    assert average_word_length(["ab", "abcd"]) == 3.0
    assert average_word_length(["abc"]) == 3.0


def test_average_word_length_of_no_words_is_zero():
    assert average_word_length([]) == 0.0


def test_flesch_reading_ease_of_known_text():
    text = "The cat sat on the mat. Dr. Smith saw it! Did the cat run? Yes."
    assert flesch_reading_ease(text) == 118.43


def test_flesch_reading_ease_uses_every_term():
    # 2 words, 1 sentence, 6 syllables: 206.835 - 1.015 * 2 - 84.6 * 3 = -48.995
    assert flesch_reading_ease("Beautiful banana.") == -48.99


def test_flesch_reading_ease_single_word():
    assert flesch_reading_ease("Go.") == 121.22


def test_flesch_reading_ease_without_words_is_none():
    assert flesch_reading_ease("... !!") is None
    assert flesch_reading_ease("") is None


def test_top_words_ranks_by_count_then_alphabetically():
    words = ["b", "a", "B", "c", "a", "b"]
    assert top_words(words, 2) == [("b", 3), ("a", 2)]
    assert top_words(["z", "y", "x"], 2) == [("x", 1), ("y", 1)]


def test_top_words_default_is_three():
    assert top_words(["d", "c", "b", "a"]) == [("a", 1), ("b", 1), ("c", 1)]


def test_top_words_skips_stopwords_case_insensitively():
    assert top_words(["The", "cat", "the", "CAT", "sat"], 5, stopwords=["THE"]) == [
        ("cat", 2), ("sat", 1)]


def test_top_words_zero_is_empty_and_negative_is_rejected():
    assert top_words(["a"], 0) == []
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        top_words(["a"], -1)
