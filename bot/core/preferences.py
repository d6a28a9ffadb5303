"""A member's own Midjourney: their settings (version, stylize, speed, remix), their suffix and
their options (``--portrait`` -> ``--ar 2:3 --s 250``), and how they turn what the member typed into
the prompt that is sent. Pure: storing them is the store's business.

Order, as Midjourney's own bot does it: the member's options are expanded (one pass, so an option
whose value names another option never loops), the suffix is appended, then the settings add what
the prompt does not already set (a ``--v`` typed in the prompt wins over the default version).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core.errors import BadOptionName, BadSetting, TooManyOptions
from bot.core.prompt import KNOWN_PARAMETERS, check_prompt, normalize_prompt, parameter_names, prompt_words

MAX_OPTIONS = 20
MAX_OPTION_NAME = 20
MAX_SUFFIX = 300
# Midjourney's /settings: Stylize low / med / high / very high.
STYLIZE = {"low": 50, "med": 100, "high": 250, "very high": 750}
SPEEDS = ("fast", "relax", "turbo")
_OPTION_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Preferences:
    version: str = ""  # "7", "6.1", "niji 6"; "" = the server's default
    stylize: str = ""  # a key of STYLIZE; "" = Midjourney's default
    speed: str = ""  # one of SPEEDS; "" = the account's mode
    remix: bool = False
    suffix: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self == Preferences()

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "stylize": self.stylize,
                "speed": self.speed,
                "remix": self.remix,
                "suffix": self.suffix,
                "options": self.options,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | None) -> Preferences:
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        return cls(
            version=str(data.get("version") or ""),
            stylize=str(data.get("stylize") or ""),
            speed=str(data.get("speed") or ""),
            remix=bool(data.get("remix")),
            suffix=str(data.get("suffix") or ""),
            options={str(k): str(v) for k, v in (data.get("options") or {}).items()},
        )

    def settings_only(self) -> Preferences:
        """The settings reset, the suffix and options kept (``/settings`` reset)."""
        return replace(self, version="", stylize="", speed="", remix=False)


def apply(prompt: str, preferences: Preferences) -> str:
    """What is sent for ``prompt``: options expanded, the suffix, then the settings' defaults.
    Words (of an option's value or the suffix) go before the first parameter, parameters after
    the prompt's own: ``a fox --ar 16:9`` with the suffix ``cinematic --s 50`` is
    ``a fox cinematic --ar 16:9 --s 50``, never ``--ar 16:9 cinematic``."""
    words, params = _split(normalize_prompt(prompt))
    extra: list[str] = []
    tokens: list[str] = []
    for token in params.split(" ") if params else []:
        value = preferences.options.get(token[2:].lower()) if token.startswith("--") else None
        if value is None:
            tokens.append(token)
            continue
        # Expanded once: an option whose value names another option cannot loop.
        option_words, option_params = _split(value)
        extra.append(option_words)
        tokens += option_params.split(" ") if option_params else []
    params = " ".join(tokens)
    suffix_words, suffix_params = _split(preferences.suffix)
    if suffix_words and suffix_words not in words:  # a recent prompt was sent with it already
        extra.append(suffix_words)
    present = parameter_names(params)
    params = " ".join([params, *(f"--{n} {v}".rstrip() for n, v in _params(suffix_params) if n not in present)])
    present = parameter_names(params)
    if preferences.version and not present & {"v", "version", "niji"}:
        niji = preferences.version.startswith("niji")
        params += f" --{preferences.version}" if niji else f" --v {preferences.version}"
    if preferences.stylize in STYLIZE and not present & {"s", "stylize"}:
        params += f" --s {STYLIZE[preferences.stylize]}"
    return normalize_prompt(" ".join([words, *extra, params]))


def _split(text: str) -> tuple[str, str]:
    """(the words, the parameters from the first ``--name`` on)."""
    text = normalize_prompt(text)
    words = prompt_words(text)
    return words, text[len(words) :].strip()


def _params(text: str) -> list[tuple[str, str]]:
    """(name as typed, lower-cased for comparison, value) of each parameter in ``text``."""
    found: list[tuple[str, str]] = []
    for token in text.split(" ") if text else []:
        if token.startswith("--") and len(token) > 2 and token[2].isalpha():
            found.append((token[2:], ""))
        elif found:
            name, value = found[-1]
            found[-1] = (name, f"{value} {token}".strip())
    return [(name.lower(), value) for name, value in found]


def check_suffix(suffix: str, banned_words: list[str] | tuple[str, ...] = ()) -> str:
    """A suffix as it will be stored, or :class:`BadParameter` / :class:`BannedWord` /
    :class:`BadSetting` (too long) for one that would make every prompt invalid."""
    suffix = normalize_prompt(suffix)
    if len(suffix) > MAX_SUFFIX:
        raise BadSetting(f"suffix of {len(suffix)} characters", limit=MAX_SUFFIX)
    if suffix:
        # After a prompt of one word, and after one that sets a parameter: the suffix's words go
        # before the parameters (see apply), its parameters after them.
        check_prompt(apply("x", Preferences(suffix=suffix)), banned_words=banned_words)
        check_prompt(apply("x --q 1", Preferences(suffix=suffix)), banned_words=banned_words)
    return suffix


def check_option(
    name: str, value: str, current: dict[str, str], banned_words: list[str] | tuple[str, ...] = ()
) -> tuple[str, str]:
    """``(name, value)`` as stored: a name that is not one of Midjourney's parameters, a value that
    is a valid prompt tail, and no more than :data:`MAX_OPTIONS` per member."""
    name = name.strip().lower().removeprefix("--")
    if not _OPTION_NAME.fullmatch(name) or len(name) > MAX_OPTION_NAME:
        raise BadOptionName(f"option name {name!r}", name=name[:MAX_OPTION_NAME] or "(nothing)", reason="letters")
    if name in KNOWN_PARAMETERS:
        raise BadOptionName(f"option name {name!r} is a Midjourney parameter", name=name, reason="parameter")
    if name not in current and len(current) >= MAX_OPTIONS:
        raise TooManyOptions(f"{len(current)} options already", limit=MAX_OPTIONS)
    return name, check_suffix(value, banned_words)
