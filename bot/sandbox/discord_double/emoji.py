"""Is a string one Unicode emoji?  What Discord checks on ``emoji.name`` when ``emoji.id`` is absent.

Dependency-free and deliberately simple: no emoji table, but the code point ranges emoji
live in plus the grammar of emoji sequences.  Exactly one emoji is accepted:

- a base emoji character, optionally followed by a presentation selector (U+FE0F/U+FE0E),
  a skin tone modifier (U+1F3FB-U+1F3FF) and tag characters (U+E0020-U+E007F, for the
  subdivision flags), joined to more such characters by ZWJ (U+200D): "🏳️‍🌈", "👨🏽‍💻";
- a keycap: a digit, "#" or "*", optionally U+FE0F, then U+20E3: "1️⃣";
- a flag: two regional indicators: "🇫🇷".

Base characters: U+1F000-U+1FAFF, U+2300-U+23FF, U+2600-U+27BF, U+2B00-U+2BFF, the few
emoji outside those blocks (©, ®, ‼, ⁉, ™, ℹ, the arrows ↔-↙ ↩ ↪, Ⓜ, 〰, 〽, ㊗, ㊙...) and
any other non-ASCII character of category So or Sk.  Anything with ASCII letters, digits
(outside a keycap), underscores, spaces or punctuation is not an emoji: "upscale_1", ":x:",
"" and "🔄 " are refused.
"""

from __future__ import annotations

import unicodedata

ZWJ = "\u200d"
VS16 = "\ufe0f"  # emoji presentation
VS15 = "\ufe0e"  # text presentation
KEYCAP = "\u20e3"
KEYCAP_BASES = frozenset("0123456789#*")

_RANGES = (
    (0x1F000, 0x1FAFF),
    (0x2300, 0x23FF),
    (0x2600, 0x27BF),
    (0x2B00, 0x2BFF),
    (0x2190, 0x21FF),  # arrows: ↔ ↕ ↖ ↩ ↪ ...
    (0x25A0, 0x25FF),  # geometric shapes: ▪ ▫ ▶ ◀ ◻ ◼ ...
    (0x3297, 0x3299),  # ㊗ ㊙
)
_SINGLES = frozenset({0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D})


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_skin_tone(ch: str) -> bool:
    return 0x1F3FB <= ord(ch) <= 0x1F3FF


def _is_tag(ch: str) -> bool:
    return 0xE0020 <= ord(ch) <= 0xE007F


def _is_base(ch: str) -> bool:
    cp = ord(ch)
    if cp < 0x80 or _is_skin_tone(ch) or _is_regional_indicator(ch):
        return False
    if cp in _SINGLES or any(lo <= cp <= hi for lo, hi in _RANGES):
        return True
    return unicodedata.category(ch) in ("So", "Sk")


def _element(text: str, i: int) -> int:
    """Parse one emoji element (no ZWJ) starting at ``i``; return the index after it, or -1."""
    n = len(text)
    ch = text[i]
    if ch in KEYCAP_BASES:
        j = i + 1
        if j < n and text[j] == VS16:
            j += 1
        return j + 1 if j < n and text[j] == KEYCAP else -1
    if _is_regional_indicator(ch):
        return i + 2 if i + 1 < n and _is_regional_indicator(text[i + 1]) else -1
    if not _is_base(ch):
        return -1
    j = i + 1
    if j < n and text[j] in (VS16, VS15):
        j += 1
    if j < n and _is_skin_tone(text[j]):
        j += 1
    while j < n and _is_tag(text[j]):
        j += 1
    return j


def is_unicode_emoji(text: str) -> bool:
    """True if ``text`` is exactly one Unicode emoji (possibly a ZWJ sequence, keycap or flag)."""
    if not isinstance(text, str) or not text:
        return False
    i = _element(text, 0)
    while 0 < i < len(text):
        if text[i] != ZWJ or i + 1 >= len(text):
            return False
        i = _element(text, i + 1)
    return i == len(text)
