"""Text from users and files that labctl stores or prints: what it refuses."""

from __future__ import annotations

import unicodedata


def unprintable(text: str) -> bool:
    """Whether ``text`` holds control characters, or bytes that were not UTF-8 (decoded as lone surrogates)."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def shown(text: str) -> str:
    """``text`` with anything unprintable escaped, for an error message that quotes it."""
    return text.encode("utf-8", "backslashreplace").decode()
