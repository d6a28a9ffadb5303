"""Which button emoji Discord takes.

A component emoji without an id must be a Unicode emoji; Discord refuses the whole message
otherwise (HTTP 400, code 50035). trueai sends names such as ``"upscale_1"`` (the name of
Midjourney's custom emoji, without its id) and ``""``, so every server emoji passes through here.
"""

from __future__ import annotations

import unicodedata

_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}  # zero-width joiner, variation selectors, keycap
_KEYCAP_BASES = set("0123456789#*")
# Blocks whose symbols Discord renders as emoji (pictographs, dingbats, arrows, regional indicators).
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2300, 0x23FF), (0x2B00, 0x2BFF), (0x2190, 0x21FF),
    (0x1F1E6, 0x1F1FF), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3299), (0x00A9, 0x00A9),
    (0x00AE, 0x00AE), (0x2122, 0x2122), (0x2139, 0x2139), (0x24C2, 0x24C2), (0x25AA, 0x25FE),
    (0x2934, 0x2935), (0xE0020, 0xE007F),
)
# What the bot shows instead of a custom emoji it has no id for, by the name trueai sends.
_STAND_INS = {"upscale_1": "⬆️"}


def _is_emoji_char(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)


def is_unicode_emoji(text: str) -> bool:
    """True for a Unicode emoji (with its selectors, joiners, skin tones, or as a keycap)."""
    if not text or len(text) > 16:
        return False
    chars = list(text)
    if chars[0] in _KEYCAP_BASES:  # 1️⃣: a digit only as the base of a keycap sequence
        return chars[1:] in (["\ufe0f", "\u20e3"], ["\u20e3"])
    has_symbol = False
    for char in chars:
        if char in _JOINERS:
            continue
        if not _is_emoji_char(char) or unicodedata.category(char) not in ("So", "Sk", "Sm", "Cf", "Mn"):
            return False
        has_symbol = True
    return has_symbol


def button_emoji(name: str) -> str | None:
    """The emoji to send for a server button: its own when Discord takes it, a stand-in the bot
    chose for a known custom one, else none (the label is kept)."""
    name = (name or "").strip()
    if is_unicode_emoji(name):
        return name
    return _STAND_INS.get(name)
