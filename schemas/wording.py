"""Small helpers for the sentences the engine writes (refusals, outcomes, timeline text)."""

from __future__ import annotations

_VOWEL_SOUND_EXCEPTIONS = ("one", "once", "uni", "use", "usu", "eu", "ewe")
"""Words that start with a vowel letter but sound a consonant ('a union', 'a one-off')."""
_SILENT_H = ("hour", "honest", "honour", "heir")
_LETTERS_NAMED_WITH_A_VOWEL = set("AEFHILMNORSX")
"""Capital letters read aloud with a vowel sound first: 'an IRO', 'an SEN officer', 'an FWi note'."""


def article(phrase: str) -> str:
    """'a' or 'an' for ``phrase`` as it is read aloud."""
    word = phrase.strip().split(" ", 1)[0] if phrase.strip() else ""
    if not word:
        return "a"
    lower = word.lower()
    if len(word) > 1 and word[:2].isupper() and word[0].isalpha():  # an initialism, read letter by letter
        return "an" if word[0] in _LETTERS_NAMED_WITH_A_VOWEL else "a"
    if lower.startswith(_SILENT_H):
        return "an"
    if lower.startswith(_VOWEL_SOUND_EXCEPTIONS):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """``phrase`` after 'a' or 'an': 'an Independent Reviewing Officer', 'a consultation'."""
    return f"{article(phrase)} {phrase}"
