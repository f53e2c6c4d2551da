import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from dagster_project.core.text import normalize_text, text_hash


def test_whitespace_collapsed_and_trimmed():
    assert normalize_text("  a\tb\n\nc\u00a0 d  ") == "a b c d"


def test_nfc_composes_accents():
    decomposed = "Cafe\u0301"
    assert normalize_text(decomposed) == "Caf\u00e9"
    assert text_hash(normalize_text(decomposed)) == text_hash(normalize_text("Caf\u00e9"))


def test_hash_is_stable_hex_and_distinguishes_texts():
    # it keys the embedding cache of every warehouse already written: a known value, never to change
    assert text_hash("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e"  # sha256, first 32 hex digits
    assert text_hash("hello") != text_hash("hello!")
    assert len(text_hash("x")) == 32 and int(text_hash("x"), 16) >= 0


@given(st.text())
def test_normalization_is_idempotent_nfc_and_trimmed(raw):
    once = normalize_text(raw)
    assert normalize_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert once == once.strip()
    assert "  " not in once
