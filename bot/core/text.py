"""Bounding text that comes from outside (the proxy, a member) before Discord gets it.

Discord refuses a whole message over one of its limits, so the text is cut instead, and the cut
says so with "…".
"""

from __future__ import annotations

# Discord's limits (https://discord.com/developers/docs/resources/message, .../components).
MAX_CONTENT = 2000
MAX_LABEL = 80
MAX_EMBED_TITLE = 256
MAX_MODAL_VALUE = 4000
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and "…" (``limit`` in all)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def clip_words(text: str, limit: int) -> str:
    """Like :func:`clip`, with runs of whitespace (newlines from the server) made single spaces."""
    return clip(" ".join(str(text).split()), limit)


def duration_text(seconds: float) -> str:
    """``45 s``, ``15 min``, ``2 h 1 min``: how long something took or has lasted, for people."""
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
