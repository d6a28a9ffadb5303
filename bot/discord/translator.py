"""Command names, descriptions, options and choices in the member's language, via discord.py's Translator.

Every such text is declared in the cogs as ``app_commands.locale_str("<English>", key="<catalogue key>")``;
``CatalogueTranslator`` looks the key up in the catalogue of the language ``language_for`` picks for the
Discord locale (``bot/locales/<language>.json``). English is the default Discord shows anyway, so for it
(and for locales we have no file for) the answer is None: no localisation is sent.

Keys: ``cmd.<command>.name``, ``cmd.<command>.description``, ``cmd.<command>.<option>.name``,
``cmd.<command>.<option>.description``, ``cmd.<command>.<option>.choice.<value>``; a group's subcommand is
``cmd.<group>.<sub>.…``. ``COMMAND_TEXTS`` holds the English of each, as the cogs declare it.
"""

from __future__ import annotations

import logging
import re

from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from bot.core.i18n import DEFAULT_LANGUAGE, catalogue, language_for

log = logging.getLogger(__name__)

# Discord's rules for what it accepts (a bad localisation makes the whole command sync fail with a 400).
MAX_NAME = 32
MAX_DESCRIPTION = 100
MAX_CHOICE_NAME = 100
try:  # the pattern discord.py itself checks names with
    from discord.app_commands.commands import VALID_SLASH_COMMAND_NAME
except ImportError:  # pragma: no cover - a discord.py without it
    VALID_SLASH_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")

_NAME_LOCATIONS = frozenset(
    {
        TranslationContextLocation.command_name,
        TranslationContextLocation.group_name,
        TranslationContextLocation.parameter_name,
    }
)
_DESCRIPTION_LOCATIONS = frozenset(
    {
        TranslationContextLocation.command_description,
        TranslationContextLocation.group_description,
        TranslationContextLocation.parameter_description,
    }
)

# The English the cogs declare, by catalogue key (the default Discord shows when there is no localisation).
COMMAND_TEXTS: dict[str, str] = {
    "cmd.imagine.name": "imagine",
    "cmd.imagine.description": "Create images from a prompt",
    "cmd.imagine.prompt.name": "prompt",
    "cmd.imagine.prompt.description": "What to imagine",
    "cmd.imagine.image.name": "image",
    "cmd.imagine.image.description": "A reference image (optional)",
    "cmd.imagine.image2.name": "image2",
    "cmd.imagine.image2.description": "A second reference image (optional)",
    "cmd.imagine.image3.name": "image3",
    "cmd.imagine.image3.description": "A third reference image (optional)",
    "cmd.imagine.sref.name": "sref",
    "cmd.imagine.sref.description": "An image for --sref: its style (optional)",
    "cmd.imagine.cref.name": "cref",
    "cmd.imagine.cref.description": "An image for --cref: its character (optional)",
    "cmd.imagine.oref.name": "oref",
    "cmd.imagine.oref.description": "An image for --oref: its object or person (optional)",
    "cmd.describe.name": "describe",
    "cmd.describe.description": "Get four prompts that describe an image",
    "cmd.describe.image.name": "image",
    "cmd.describe.image.description": "The image to describe",
    "cmd.describe.link.name": "link",
    "cmd.describe.link.description": "Or an image's link (where the server takes one)",
    "cmd.shorten.name": "shorten",
    "cmd.shorten.description": "Shorter versions of a prompt, to imagine",
    "cmd.shorten.prompt.name": "prompt",
    "cmd.shorten.prompt.description": "The prompt to shorten",
    "cmd.blend.name": "blend",
    "cmd.blend.description": "Blend 2 to 5 images into one",
    **{
        key: value
        for n in range(1, 6)
        for key, value in (
            (f"cmd.blend.image{n}.name", f"image{n}"),
            (f"cmd.blend.image{n}.description", f"Image {n}"),
        )
    },
    "cmd.blend.dimensions.name": "dimensions",
    "cmd.blend.dimensions.description": "Shape of the result",
    "cmd.blend.dimensions.choice.portrait": "Portrait (2:3)",
    "cmd.blend.dimensions.choice.square": "Square (1:1)",
    "cmd.blend.dimensions.choice.landscape": "Landscape (3:2)",
    "cmd.animate.name": "animate",
    "cmd.animate.description": "Turn an image into short videos",
    "cmd.animate.image.name": "image",
    "cmd.animate.image.description": "The image to animate (or give a job)",
    "cmd.animate.job.name": "job",
    "cmd.animate.job.description": "One of your finished images, by its job id (or give an image)",
    "cmd.animate.prompt.name": "prompt",
    "cmd.animate.prompt.description": "How it should move (optional)",
    "cmd.animate.motion.name": "motion",
    "cmd.animate.motion.description": "Low or high motion",
    "cmd.animate.motion.choice.low": "Low motion",
    "cmd.animate.motion.choice.high": "High motion",
    "cmd.animate.end_image.name": "end_image",
    "cmd.animate.end_image.description": "The image the video ends on (optional)",
    "cmd.animate.loop.name": "loop",
    "cmd.animate.loop.description": "End where it starts",
    "cmd.animate.batch.name": "batch",
    "cmd.animate.batch.description": "How many videos: 1, 2 or 4",
    "cmd.settings.name": "settings",
    "cmd.settings.description": "Your default version, stylize, speed and remix",
    "cmd.prefer.name": "prefer",
    "cmd.prefer.description": "Your prompt preferences",
    "cmd.prefer.suffix.name": "suffix",
    "cmd.prefer.suffix.description": "Text added to every prompt (empty: none)",
    "cmd.prefer.suffix.value.name": "value",
    "cmd.prefer.suffix.value.description": "e.g. --ar 16:9 --v 7",
    "cmd.prefer.option.name": "option",
    "cmd.prefer.option.description": "Your own --options",
    "cmd.prefer.option.set.name": "set",
    "cmd.prefer.option.set.description": "--name in a prompt becomes the value",
    "cmd.prefer.option.set.name_option.name": "name",
    "cmd.prefer.option.set.name_option.description": "e.g. portrait",
    "cmd.prefer.option.set.value.name": "value",
    "cmd.prefer.option.set.value.description": "e.g. --ar 2:3 --s 250",
    "cmd.prefer.option.list.name": "list",
    "cmd.prefer.option.list.description": "Your options",
    "cmd.prefer.option.delete.name": "delete",
    "cmd.prefer.option.delete.description": "Forget one of your options",
    "cmd.prefer.option.delete.name_option.name": "name",
    "cmd.prefer.option.delete.name_option.description": "The option's name",
    "cmd.info.name": "info",
    "cmd.info.description": "Your jobs today, your limits and your credits",
    "cmd.jobs.name": "jobs",
    "cmd.jobs.description": "Your recent jobs",
    "cmd.show.name": "show",
    "cmd.show.description": "Post one of your jobs again, with its buttons",
    "cmd.show.job_id.name": "job_id",
    "cmd.show.job_id.description": "The job's id",
    "cmd.mj.name": "mj",
    "cmd.mj.description": "mjbot administration",
    "cmd.mj.status.name": "status",
    "cmd.mj.status.description": "Proxy health and the jobs in flight (admins only)",
    "cmd.balance.name": "balance",
    "cmd.balance.description": "Your credits: balance, allowance and last entries",
    "cmd.mj.credits.name": "credits",
    "cmd.mj.credits.description": "Give or take a member's credits (admins only)",
    "cmd.mj.credits.give.name": "give",
    "cmd.mj.credits.give.description": "Give a member credits (admins only)",
    "cmd.mj.credits.give.member.name": "member",
    "cmd.mj.credits.give.member.description": "Who gets them",
    "cmd.mj.credits.give.amount.name": "amount",
    "cmd.mj.credits.give.amount.description": "How many, e.g. 10 or 0.5",
    "cmd.mj.credits.give.reason.name": "reason",
    "cmd.mj.credits.give.reason.description": "Why (kept in the ledger)",
    "cmd.mj.credits.take.name": "take",
    "cmd.mj.credits.take.description": "Take credits from a member (admins only)",
    "cmd.mj.credits.take.member.name": "member",
    "cmd.mj.credits.take.member.description": "Whose credits",
    "cmd.mj.credits.take.amount.name": "amount",
    "cmd.mj.credits.take.amount.description": "How many, e.g. 10 or 0.5",
    "cmd.mj.credits.take.reason.name": "reason",
    "cmd.mj.credits.take.reason.description": "Why (kept in the ledger)",
    "cmd.mj.spend.name": "spend",
    "cmd.mj.spend.description": "What members spent, by action and member (admins only)",
    "cmd.mj.spend.period.name": "period",
    "cmd.mj.spend.period.description": "Since when (UTC); default today",
    "cmd.mj.spend.period.choice.today": "today",
    "cmd.mj.spend.period.choice.week": "week",
    "cmd.mj.spend.period.choice.month": "month",
    "cmd.mj.spend.period.choice.all": "all",
}


def valid_translation(text: str, location: TranslationContextLocation | None) -> bool:
    """Whether Discord accepts ``text`` where ``location`` says it goes."""
    if location in _NAME_LOCATIONS:
        return text == text.lower() and VALID_SLASH_COMMAND_NAME.fullmatch(text) is not None
    if location in _DESCRIPTION_LOCATIONS:
        return 1 <= len(text) <= MAX_DESCRIPTION
    if location is TranslationContextLocation.choice_name:
        return 1 <= len(text) <= MAX_CHOICE_NAME
    return bool(text)


class CatalogueTranslator(app_commands.Translator):
    """Command texts from ``bot/locales``: None for English and for keys a language lacks."""

    def __init__(self) -> None:
        super().__init__()
        # language_for lists bot/locales on each call; Discord has ~30 locales, so ask once for each.
        self._languages: dict[str, str] = {}

    def language(self, locale: Locale | str | None) -> str:
        code = str(locale.value if isinstance(locale, Locale) else locale) if locale else ""
        language = self._languages.get(code)
        if language is None:
            language = self._languages[code] = language_for(code or None)
        return language

    def lookup(
        self, key: str, locale: Locale | str | None, location: TranslationContextLocation | None = None
    ) -> str | None:
        """The text for ``key`` in the language of ``locale``, or None to let Discord show the English."""
        language = self.language(locale)
        if language == DEFAULT_LANGUAGE:
            return None
        text = catalogue(language).get(key)
        if not isinstance(text, str) or not text:
            return None
        if not valid_translation(text, location):
            log.error(
                "translation of %r for %s is not valid for Discord here (%s): %r; using English",
                key,
                language,
                getattr(location, "name", location),
                text,
            )
            return None
        return text

    async def translate(self, string: locale_str, locale: Locale, context: TranslationContextTypes) -> str | None:
        try:
            key = string.extras.get("key")
            if not key:
                return None
            return self.lookup(str(key), locale, getattr(context, "location", None))
        except Exception:  # a failure here would fail the whole command sync: log it, Discord shows English
            log.exception("translating %r for %s failed", getattr(string, "message", string), locale)
            return None
