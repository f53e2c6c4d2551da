"""Text normalization and hashing."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC, every run of whitespace (newlines, tabs, NBSP...) collapsed to one space, trimmed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def text_hash(normalized: str) -> str:
    """Stable hex digest of an already normalized text; the embedding cache key."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:32]
