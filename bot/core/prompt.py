"""Tidy a prompt and catch what Midjourney would refuse, before anything is submitted.

A prompt is text (image URLs, ``::`` weights, any language) followed by ``--name value``
parameters. Only parameters listed in ``_RULES`` are checked: Midjourney adds new ones often, and
blocking one we don't know would block a valid prompt, so an unknown ``--name`` is passed on as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from bot.core.errors import BadImageLink, BadParameter, BannedWord, EmptyPrompt, PromptTooLong

MAX_PROMPT_LENGTH = 4000  # characters after normalising; Midjourney rejects much longer prompts

# Phones auto-correct "--" to an em or en dash; Midjourney itself reads "—ar" as "--ar".
_PHONE_DASH = re.compile(r"(?<!\S)[\u2013\u2014]{1,2}(?=[A-Za-z])")

# A parameter is a token "--" + a letter; "--" alone or "-- ar" is plain text.
_PARAMETER = re.compile(r"--([A-Za-z]\S*)")
_PARAMETER_START = re.compile(r"(?:^| )--[A-Za-z]")

# Scripts written without spaces between words (Hangul too: particles attach to the noun), where a
# whole-word match would never fire.
_NO_SPACE_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
_NO_SPACE_SCRIPT = re.compile(f"[{_NO_SPACE_CHARS}]")
# A letter or digit of a spaced script: what a Latin banned word must not touch ("ass" in "class").
# CJK letters don't count, so "一个ass女孩" still matches.
_SPACED_WORD_CHAR = rf"[^\W{_NO_SPACE_CHARS}]"

_WHOLE = re.compile(r"[0-9]+")  # ASCII only: Midjourney doesn't take full-width digits
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
# Values are compared as float(), never int(): int() raises on a string of over 4300 digits.
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_RATIO = re.compile(r"([0-9]+):([0-9]+)")

_SHOWN_VALUE = 40  # characters of a bad value quoted back: the error must fit a Discord message


def normalize_prompt(text: str) -> str:
    """Fold runs of whitespace (incl. newlines) to one space, strip; turn the em/en dash that phones
    auto-correct from "--" (e.g. "—ar 16:9", "–v 6") into "--" when it starts a parameter."""
    return _PHONE_DASH.sub("--", " ".join(text.split()))


def check_prompt(text: str, *, banned_words: Sequence[str] = (), max_length: int = MAX_PROMPT_LENGTH) -> str:
    """Return the normalised prompt, or raise: EmptyPrompt (nothing left), PromptTooLong, BannedWord
    (first banned word found, whole word, case-insensitive; also works for CJK banned words, which
    have no word boundaries: for a banned word containing CJK characters, a plain substring match),
    BadParameter (a known parameter with a malformed value)."""
    prompt = normalize_prompt(text)
    if not prompt:
        raise EmptyPrompt("empty prompt")
    if len(prompt) > max_length:
        raise PromptTooLong(f"prompt of {len(prompt)} characters", limit=max_length, length=len(prompt))
    for word in banned_words:
        phrase = " ".join(word.split())
        if phrase and _banned_pattern(phrase).search(prompt):
            raise BannedWord(f"banned word {phrase!r} in prompt", word=phrase)
    for name, value in _parameters(prompt):
        rule = _RULES.get(name.lower())
        # "{16:9, 1:1}" is a permutation: Midjourney expands it and checks each prompt itself.
        if rule is None or "{" in value or rule.accepts(value):
            continue
        parameter = f"--{name.lower()}"
        shown = value if len(value) <= _SHOWN_VALUE else value[: _SHOWN_VALUE - 1] + "…"
        raise BadParameter(
            f"bad parameter {parameter} {value!r}",
            parameter=parameter,
            value=shown or "(nothing)",
            expected=rule.expected,
        )
    return prompt


# --- parameters ----------------------------------------------------------------------------------


def check_image_link(link: str) -> str:
    """An image link as a server may fetch it: http(s), a host, no spaces; else :class:`BadImageLink`."""
    link = link.strip()
    parts = urlsplit(link)
    if (
        len(link) > 2000
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in link)
    ):
        raise BadImageLink(f"not an image link: {link[:80]!r}")
    return link


def prompt_words(prompt: str) -> str:
    """A prompt without its parameters: "a fox --ar 16:9" -> "a fox"."""
    return _PARAMETER_START.split(normalize_prompt(prompt), maxsplit=1)[0].strip()


def parameter_names(prompt: str) -> set[str]:
    """The parameters a (normalised) prompt sets, lower-case, without ``--``."""
    return {name.lower() for name, _ in _parameters(prompt)}


def _parameters(prompt: str) -> Iterator[tuple[str, str]]:
    """(name as typed, value) for each ``--name``; the value is every token up to the next one."""
    name: str | None = None
    value: list[str] = []
    for token in prompt.split(" "):
        match = _PARAMETER.fullmatch(token)
        if match is None:
            value.append(token)
            continue
        if name is not None:
            yield name, " ".join(value)
        name, value = match[1], []
    if name is not None:
        yield name, " ".join(value)


@dataclass(frozen=True)
class _Rule:
    accepts: Callable[[str], bool]  # given the value ("" when none)
    expected: str  # ends "The parameter {parameter} {value} is not valid: {expected}."


def _number(low: float, high: float, *, whole: bool = True) -> _Rule:
    pattern = _WHOLE if whole else _DECIMAL
    kind = "a whole number" if whole else "a number"
    return _Rule(
        lambda v: pattern.fullmatch(v) is not None and low <= float(v) <= high,
        f"{kind} from {low} to {high}",
    )


def _ratio(value: str) -> bool:
    match = _RATIO.fullmatch(value)
    return match is not None and float(match[1]) > 0 and float(match[2]) > 0


_RATIO_RULE = _Rule(_ratio, "a ratio like 16:9")
# Any "6.1"-style number from 1 to 9, not a fixed list: new versions must not need a release.
_VERSION_RULE = _Rule(lambda v: _VERSION.fullmatch(v) is not None and 1 <= float(v) <= 9, "a version like 6.1 or 7")
_NIJI_RULE = _Rule(
    lambda v: v == "" or (_WHOLE.fullmatch(v) is not None and 4 <= float(v) <= 9),
    "a niji version like 6, or nothing",
)
_QUALITY_RULE = _Rule(
    lambda v: _DECIMAL.fullmatch(v) is not None and float(v) in {0.25, 0.5, 1, 2, 4},
    "one of .25, .5, 1, 2 or 4",
)
_FLAG = _Rule(lambda v: v == "", "it takes no value")
_ANYTHING = _Rule(lambda v: True, "")


def _needs(expected: str) -> _Rule:
    return _Rule(lambda v: v != "", expected)


_RULES: dict[str, _Rule] = {
    **dict.fromkeys(("ar", "aspect"), _RATIO_RULE),
    **dict.fromkeys(("v", "version"), _VERSION_RULE),
    "niji": _NIJI_RULE,
    **dict.fromkeys(("q", "quality"), _QUALITY_RULE),
    **dict.fromkeys(("s", "stylize"), _number(0, 1000)),
    **dict.fromkeys(("c", "chaos"), _number(0, 100)),
    **dict.fromkeys(("w", "weird"), _number(0, 3000)),
    **dict.fromkeys(("seed", "sameseed"), _number(0, 4294967295)),
    "stop": _number(10, 100),
    "iw": _number(0, 3, whole=False),
    **dict.fromkeys(("r", "repeat"), _number(1, 40)),
    "no": _needs("the words to leave out, like --no plants"),
    "style": _needs("a style, like raw"),
    **dict.fromkeys(("tile", "video", "relax", "fast", "turbo", "draft"), _FLAG),
    "sref": _needs("an image URL or style code"),
    **dict.fromkeys(("cref", "oref"), _needs("an image URL")),
    **dict.fromkeys(("p", "profile"), _ANYTHING),  # bare --p uses the member's default profile
    **dict.fromkeys(("sw", "cw"), _number(0, 1000)),
    "ow": _number(1, 1000),
    "exp": _number(0, 100),
}


# Midjourney's parameters the bot knows: a member's own option may not take one of these names.
KNOWN_PARAMETERS = frozenset(_RULES) | {
    "raw", "personalize", "sv", "hd", "motion", "bs", "end", "loop", "cw", "sw", "ow", "oref", "cref", "sref",
}  # fmt: skip


# --- banned words --------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _banned_pattern(phrase: str) -> re.Pattern[str]:
    """Whole word (or phrase) for spaced scripts; a plain substring when the phrase has CJK."""
    escaped = re.escape(phrase)
    if _NO_SPACE_SCRIPT.search(phrase):
        return re.compile(escaped, re.IGNORECASE)
    return re.compile(rf"(?<!{_SPACED_WORD_CHAR}){escaped}(?!{_SPACED_WORD_CHAR})", re.IGNORECASE)
