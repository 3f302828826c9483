import pytest

from textstats.normalize import normalize


def test_collapses_whitespace_and_strips_ends():
    assert normalize("  a \t b\n\nc  ") == "a b c"


def test_straightens_curly_quotes():
    assert normalize("\u201cit\u2019s\u201d \u2018x\u2019") == "\"it's\" 'x'"


def test_applies_nfkc_compatibility_forms():
    assert normalize("\uff21\uff22\uff23 \ufb01") == "ABC fi"


def test_lower_casefolds_only_when_asked():
    assert normalize("Stra\u00dfe") == "Stra\u00dfe"
    assert normalize("Stra\u00dfe", lower=True) == "strasse"


def test_rejects_non_string_input_with_the_type_name():
    with pytest.raises(TypeError, match="got bytes"):
        normalize(b"text")
