import pytest

from textstats.segment import split_sentences, split_words


def test_words_keep_inner_apostrophes_and_hyphens():
    assert split_words("Don't stop, well-known friend!") == ["Don't", "stop", "well-known", "friend"]


def test_words_drop_punctuation_and_underscores():
    assert split_words("a_b -- c... 42") == ["a", "b", "c", "42"]


def test_words_of_empty_text_is_empty():
    assert split_words("   ") == []


def test_sentences_split_on_each_terminator():
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]


def test_sentences_do_not_split_after_abbreviations():
    assert split_sentences("Dr. Smith met Mr. Jones. They talked.") == [
        "Dr. Smith met Mr. Jones.", "They talked."]


def test_abbreviation_check_is_case_insensitive():
    assert split_sentences("See PROF. Lee. Then go.") == ["See PROF. Lee.", "Then go."]


def test_sentences_need_a_capital_or_digit_after_the_terminator():
    assert split_sentences("It costs 5. 10 more? e.g. this. Fine") == [
        "It costs 5.", "10 more? e.g. this.", "Fine"]


def test_question_after_abbreviation_like_word_still_splits():
    assert split_sentences("Is it Dr? Yes") == ["Is it Dr?", "Yes"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_has_no_sentences(text):
    assert split_sentences(text) == []


def test_sentences_are_normalised_first():
    assert split_sentences("  Hello\n\n  world.   Bye.  ") == ["Hello world.", "Bye."]
