"""How a member's preferences and /info look: the /settings panel (its text and its menus) and the
/prefer and /info answers. The menus' clicks are handled next to them, in ``cogs/member.py``."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.core.i18n import t
from bot.core.preferences import STYLIZE, Preferences
from bot.core.text import clip
from bot.discord.ui.credits import account_text
from bot.jobs.members import MemberInfo

DEFAULT = "default"  # a menu's value for "no setting": the server's or Midjourney's default
SETTING_PREFIX = "mjs"


def setting_id(name: str) -> str:
    return f"{SETTING_PREFIX}:{name}"


def code(text: str) -> str:
    """``text`` as inline code: shown exactly as typed (no Markdown), a backtick cannot end it."""
    return "`" + text.replace("`", "'") + "`"


def settings_text(preferences: Preferences, language: str) -> str:
    default = t("settings.default", language)
    lines = [
        t("settings.title", language),
        t("settings.version", language, value=preferences.version or default),
        t("settings.stylize", language, value=_stylize(preferences.stylize) or default),
        t("settings.speed", language, value=preferences.speed or default),
        t("settings.remix", language, value=t("settings.on" if preferences.remix else "settings.off", language)),
        t("settings.suffix", language, value=code(preferences.suffix) if preferences.suffix else "—"),
        t("settings.options", language, count=len(preferences.options)),
    ]
    return clip("\n".join(lines), 2000)


def _stylize(key: str) -> str:
    return f"{key} ({STYLIZE[key]})" if key in STYLIZE else ""


def settings_items(
    preferences: Preferences, language: str, *, versions: Sequence[str], speeds: Sequence[str]
) -> list[tuple[str, list[discord.SelectOption]]]:
    """The panel's menus: (setting name, options with the member's current choice marked)."""
    default = t("settings.default", language)

    def options(current: str, choices: Sequence[tuple[str, str]]) -> list[discord.SelectOption]:
        return [
            discord.SelectOption(label=clip(label, 100), value=value, default=(value == (current or DEFAULT)))
            for value, label in ((DEFAULT, default), *choices)
        ]

    menus = [
        ("version", options(preferences.version, [(v, v) for v in versions])),
        ("stylize", options(preferences.stylize, [(k, _stylize(k)) for k in STYLIZE])),
    ]
    if speeds:
        menus.append(("speed", options(preferences.speed, [(s, s) for s in speeds])))
    return menus


def options_text(preferences: Preferences, language: str) -> str:
    if not preferences.options:
        return t("prefer.no_options", language)
    lines = [t("prefer.options_title", language, count=len(preferences.options))]
    lines += [f"{code('--' + name)} → {code(value)}" for name, value in sorted(preferences.options.items())]
    return clip("\n".join(lines), 2000)


def info_text(info: MemberInfo, language: str, unit: str) -> str:
    unlimited = t("info.unlimited", language)
    lines = [
        t("info.title", language),
        t("info.jobs_today", language, count=info.jobs_today, limit=info.max_per_day or unlimited),
        t("info.running", language, count=info.running, limit=info.max_running or unlimited),
    ]
    if info.account is not None:
        lines += ["", account_text(info.account, unit, language)]
    return clip("\n".join(lines), 2000)
