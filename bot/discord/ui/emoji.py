"""Which button emoji Discord takes.

A component emoji without an id must be a Unicode emoji; Discord refuses the whole message
otherwise (HTTP 400, code 50035). trueai sends names such as ``"upscale_1"`` (the name of
Midjourney's custom emoji, without its id) and ``""``, so every server emoji passes through here.
"""

from __future__ import annotations

_KEYCAP_BASES = set("0123456789#*")
# Blocks whose symbols Discord renders as emoji (pictographs, dingbats, arrows, regional indicators).
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),
    (0x2600, 0x27BF),
    (0x2300, 0x23FF),
    (0x2B00, 0x2BFF),
    (0x2190, 0x21FF),
    (0x1F1E6, 0x1F1FF),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2934, 0x2935),
    (0xE0020, 0xE007F),
)
# What the bot shows instead of a custom emoji it has no id for, by the name trueai sends.
_STAND_INS = {"upscale_1": "⬆️"}


def _is_emoji_char(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)


def _is_modifier(char: str) -> bool:
    # Variation selectors, keycap, skin tones, tag characters: they change the emoji before them.
    code = ord(char)
    return char in ("\ufe0f", "\ufe0e", "\u20e3") or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def _is_single(part: str) -> bool:
    """One emoji: a symbol and its modifiers, or a flag (two regional indicators)."""
    bases = [char for char in part if not _is_modifier(char)]
    if not bases or not all(_is_emoji_char(char) for char in bases):
        return False
    if all(0x1F1E6 <= ord(char) <= 0x1F1FF for char in bases):
        return len(bases) == 2
    return len(bases) == 1 and bases[0] == part[0]


def is_unicode_emoji(text: str) -> bool:
    """True for one Unicode emoji (with selectors, skin tone, ZWJ sequence, keycap or flag)."""
    if not text or len(text) > 16:
        return False
    if text[0] in _KEYCAP_BASES:  # 1️⃣: a digit only as the base of a keycap sequence
        return text[1:] in ("\ufe0f\u20e3", "\u20e3")
    return all(_is_single(part) for part in text.split("\u200d"))


def button_emoji(name: str) -> str | None:
    """The emoji to send for a server button: its own when Discord takes it, a stand-in the bot
    chose for a known custom one, else none (the label is kept)."""
    name = (name or "").strip()
    if is_unicode_emoji(name):
        return name
    return _STAND_INS.get(name)
