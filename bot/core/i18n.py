"""The message catalogue: every user-facing text, one JSON file per language in ``bot/locales``.

A third language is one new file; ``locale_for`` maps a Discord locale to the files we have.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from bot.core.errors import MjBotError
from bot.core.text import MAX_CONTENT, clip, clip_words

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"  # bot/locales, shipped as package data


@cache
def catalogue(language: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def available_languages() -> list[str]:
    return sorted(path.stem for path in LOCALES_DIR.glob("*.json"))


def language_for(locale: str | None) -> str:
    """``zh-CN`` -> ``zh-CN`` when we have it; ``en-US`` -> ``en``; anything else -> English."""
    if not locale:
        return DEFAULT_LANGUAGE
    languages = available_languages()
    if locale in languages:
        return locale
    base = locale.split("-")[0]
    return base if base in languages else DEFAULT_LANGUAGE


def t(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``language`` (falling back to English), with ``params`` filled in."""
    template = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key)
    if template is None:
        log.error("missing message key %r", key)
        return key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        log.error("message %r is missing parameters (%s)", key, sorted(params))
        return template


def error_text(error: MjBotError, language: str = DEFAULT_LANGUAGE) -> str:
    """One sentence that says what happened and what to do, plus the server's words as detail."""
    key = error.key
    if key == "submit.banned" and not error.params.get("banned_word"):
        key = "submit.banned_unknown"
    # Parameters can be the proxy's words (a banned word, a reason): bounded like the detail, and
    # the whole answer within Discord's limit, or the member would be left with "thinking…".
    params = {
        name: clip_words(value, MAX_PARAM) if isinstance(value, str) else value for name, value in error.params.items()
    }
    text = t(key, language, **params)
    if error.detail:
        text += "\n" + t("error.detail", language, detail=clip_words(error.detail, MAX_DETAIL))
    return clip(text, MAX_CONTENT)


MAX_PARAM = 200  # characters of one parameter of an error message (a banned word, a reason)
MAX_DETAIL = 300  # characters of the server's words shown under an error
