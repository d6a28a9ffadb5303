"""The message catalogues agree with each other, and command texts reach Discord in the member's language."""

from __future__ import annotations

import json
import logging
import re
import string

import discord
import pytest
from discord import app_commands
from discord.app_commands import TranslationContext, TranslationContextLocation, locale_str

from bot.core import i18n
from bot.core.errors import MjBotError
from bot.discord.translator import COMMAND_TEXTS, MAX_CHOICE_NAME, MAX_DESCRIPTION, MAX_NAME, CatalogueTranslator

LOCALES_DIR = i18n.LOCALES_DIR
OTHER_LANGUAGES = sorted(path.stem for path in LOCALES_DIR.glob("*.json") if path.stem != "en")

try:  # Discord's own pattern for names needs \p{…}, which only the regex module has
    import regex

    DISCORD_NAME = regex.compile(r"^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$")
except ImportError:  # pragma: no cover - depends on what is installed
    regex = None
    DISCORD_NAME = None


def load(language: str) -> dict[str, str]:
    # Read the file afresh (not i18n.catalogue, which caches): the test sees what is on disk now.
    return json.loads((LOCALES_DIR / f"{language}.json").read_text(encoding="utf-8"))


def english() -> dict[str, str]:
    """Every text a translation must cover: the catalogue plus the command texts the cogs declare."""
    return {**COMMAND_TEXTS, **load("en")}


def placeholders(template: str) -> set[str]:
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(re.split(r"[.\[]", field, maxsplit=1)[0])
    return names


def L(key: str) -> locale_str:  # noqa: N802 - reads like the cogs' declarations
    return locale_str(COMMAND_TEXTS[key], key=key)


# --- the catalogues ------------------------------------------------------------------------------


def test_there_is_a_chinese_catalogue() -> None:
    assert "zh-CN" in OTHER_LANGUAGES


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_english_key_is_translated(language: str) -> None:
    missing = sorted(english().keys() - load(language).keys())
    assert not missing, f"{language}.json lacks {len(missing)} key(s) of en.json / COMMAND_TEXTS: {missing}"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_no_key_exists_only_in_a_translation(language: str) -> None:
    extra = sorted(load(language).keys() - english().keys())
    assert not extra, f"{language}.json has key(s) that en.json / COMMAND_TEXTS do not: {extra}"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_placeholders_are_the_same_in_every_language(language: str) -> None:
    reference = english()
    differ = {
        key: (sorted(placeholders(reference[key])), sorted(placeholders(text)))
        for key, text in load(language).items()
        if key in reference and placeholders(reference[key]) != placeholders(text)
    }
    assert not differ, f"{language}.json: placeholders differ from English (en, {language}): {differ}"


def test_command_texts_in_en_json_agree_with_the_cogs_defaults() -> None:
    # en.json need not repeat the command texts; where it does, it must say what the cogs declare.
    catalogue = load("en")
    differ = {
        key: (catalogue[key], text)
        for key, text in COMMAND_TEXTS.items()
        if key in catalogue and catalogue[key] != text
    }
    assert not differ


@pytest.mark.parametrize("language", ["en", *OTHER_LANGUAGES])
def test_every_text_formats_with_its_parameters(language: str) -> None:
    for key, text in load(language).items():
        assert isinstance(text, str) and text.strip(), f"{language}: {key} is empty"
        params = {name: "1" for name in placeholders(text)}
        try:
            text.format(**params)
        except (KeyError, IndexError, ValueError) as exc:
            pytest.fail(f"{language}: {key} does not format: {exc!r}")


def test_every_error_key_is_in_the_catalogues() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *(sub for child in cls.__subclasses__() for sub in subclasses(child))]

    keys = {cls.key for cls in subclasses(MjBotError)} | {"submit.banned_unknown", "error.detail"}
    for language in ["en", *OTHER_LANGUAGES]:
        assert not keys - load(language).keys(), language


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("zh-CN", "zh-CN"),
        ("zh-TW", "en"),  # Traditional Chinese is another language: English until it has its own file
        ("en-US", "en"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_for(locale: str | None, language: str) -> None:
    assert i18n.language_for(locale) == language


def test_t_in_chinese() -> None:
    assert i18n.t("status.queued", "zh-CN", ahead=3) == "排队中：前面还有 3 个"
    assert i18n.t("status.waiting", "zh-CN") == "等待开始"


def test_t_falls_back_to_english_for_a_key_chinese_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    real = i18n.catalogue

    def without_reroll(language: str) -> dict[str, str]:
        texts = dict(real(language))
        if language == "zh-CN":
            texts.pop("button.reroll")
        return texts

    monkeypatch.setattr(i18n, "catalogue", without_reroll)
    assert i18n.t("button.reroll", "zh-CN") == "Reroll"
    assert i18n.t("status.waiting", "zh-CN") == "等待开始"


def test_error_text_in_chinese() -> None:
    from bot.core.errors import PromptTooLong, ProxyTimeout

    assert (
        i18n.error_text(PromptTooLong("x", limit=10, length=12), "zh-CN")
        == "提示词太长（12 个字符，上限为 10）。请精简一下。"
    )
    text = i18n.error_text(ProxyTimeout("x", detail="read timed out"), "zh-CN")
    assert text.endswith("\n详情：read timed out")


# --- command texts, as Discord will take them ----------------------------------------------------


def command_keys(kind: str) -> list[str]:
    if kind == "name":
        return [key for key in COMMAND_TEXTS if key.endswith(".name")]
    if kind == "description":
        return [key for key in COMMAND_TEXTS if key.endswith(".description")]
    return [key for key in COMMAND_TEXTS if ".choice." in key]


def test_command_keys_are_all_names_descriptions_or_choices() -> None:
    assert sorted(COMMAND_TEXTS) == sorted(command_keys("name") + command_keys("description") + command_keys("choice"))


@pytest.mark.parametrize("language", ["en", *OTHER_LANGUAGES])
def test_command_names_are_valid_discord_names(language: str) -> None:
    texts = english() if language == "en" else load(language)
    for key in command_keys("name"):
        name = texts[key]
        assert name == name.lower(), f"{language}: {key} {name!r} is not lowercase"
        assert 1 <= len(name) <= MAX_NAME and " " not in name, f"{language}: {key} {name!r}"
        if DISCORD_NAME is not None:
            assert DISCORD_NAME.fullmatch(name), f"{language}: {key} {name!r} is not a valid Discord name"
        else:  # discord.py's own check (\w): close to Discord's
            assert app_commands.commands.VALID_SLASH_COMMAND_NAME.fullmatch(name), f"{language}: {key} {name!r}"


@pytest.mark.parametrize("language", ["en", *OTHER_LANGUAGES])
def test_command_descriptions_and_choices_fit(language: str) -> None:
    texts = english() if language == "en" else load(language)
    for key in command_keys("description"):
        assert 1 <= len(texts[key]) <= MAX_DESCRIPTION, f"{language}: {key}"
    for key in command_keys("choice"):
        assert 1 <= len(texts[key]) <= MAX_CHOICE_NAME, f"{language}: {key}"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_option_names_are_unique_within_each_command(language: str) -> None:
    texts = load(language)
    options: dict[str, list[str]] = {}
    for key in command_keys("name"):
        parts = key.split(".")  # cmd.<command>.<option>.name
        if (
            len(parts) == 4
            and f"cmd.{parts[1]}.{parts[2]}.description" in COMMAND_TEXTS
            and f"cmd.{parts[1]}.name" in COMMAND_TEXTS
            and parts[1] != "mj"
        ):
            options.setdefault(parts[1], []).append(texts[key])
    for command, names in options.items():
        assert len(names) == len(set(names)), f"{language}: /{command} has two options named alike: {names}"


def context(location: TranslationContextLocation) -> TranslationContext:
    return TranslationContext(location=location, data=None)


@pytest.mark.parametrize(
    ("key", "location", "expected"),
    [
        ("cmd.imagine.name", TranslationContextLocation.command_name, "绘图"),
        ("cmd.imagine.description", TranslationContextLocation.command_description, "根据提示词生成图片"),
        ("cmd.imagine.prompt.name", TranslationContextLocation.parameter_name, "提示词"),
        ("cmd.blend.dimensions.description", TranslationContextLocation.parameter_description, "生成图片的比例"),
        ("cmd.blend.dimensions.choice.square", TranslationContextLocation.choice_name, "方图 (1:1)"),
        ("cmd.mj.status.name", TranslationContextLocation.command_name, "状态"),
        ("cmd.mj.description", TranslationContextLocation.group_description, "mjbot 管理"),
    ],
)
async def test_translator_gives_chinese(key: str, location: TranslationContextLocation, expected: str) -> None:
    translator = CatalogueTranslator()
    assert await translator.translate(L(key), discord.Locale.chinese, context(location)) == expected


@pytest.mark.parametrize(
    "locale",
    [
        discord.Locale.american_english,
        discord.Locale.british_english,
        discord.Locale.taiwan_chinese,
        discord.Locale.french,
        discord.Locale.japanese,
    ],
)
async def test_translator_leaves_other_locales_to_discord(locale: discord.Locale) -> None:
    translator = CatalogueTranslator()
    assert (
        await translator.translate(L("cmd.imagine.name"), locale, context(TranslationContextLocation.command_name))
        is None
    )


async def test_translator_without_a_key_or_with_an_unknown_one() -> None:
    translator = CatalogueTranslator()
    where = context(TranslationContextLocation.command_description)
    assert await translator.translate(locale_str("Create images"), discord.Locale.chinese, where) is None
    assert await translator.translate(locale_str("x", key="cmd.nope.name"), discord.Locale.chinese, where) is None
    assert await translator.translate(locale_str("x", key=""), discord.Locale.chinese, where) is None
    assert await translator.translate(locale_str("x", key=None), discord.Locale.chinese, where) is None


async def test_translator_never_raises(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import bot.discord.translator as module

    def broken(language: str) -> dict[str, str]:
        raise ValueError("the catalogue is not valid JSON")

    monkeypatch.setattr(module, "catalogue", broken)
    translator = CatalogueTranslator()
    with caplog.at_level(logging.ERROR, logger="bot.discord.translator"):
        assert (
            await translator.translate(
                L("cmd.imagine.name"), discord.Locale.chinese, context(TranslationContextLocation.command_name)
            )
            is None
        )
        assert await translator.translate(L("cmd.imagine.name"), None, None) is None  # type: ignore[arg-type]
        assert await translator.translate(None, discord.Locale.chinese, None) is None  # type: ignore[arg-type]
    assert "translating" in caplog.text


async def test_translator_refuses_a_translation_discord_would_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.discord.translator as module

    monkeypatch.setattr(
        module, "catalogue", lambda language: {"cmd.imagine.name": "Bad Name", "cmd.imagine.description": "x" * 101}
    )
    translator = CatalogueTranslator()
    assert (
        await translator.translate(
            L("cmd.imagine.name"), discord.Locale.chinese, context(TranslationContextLocation.command_name)
        )
        is None
    )
    assert (
        await translator.translate(
            L("cmd.imagine.description"),
            discord.Locale.chinese,
            context(TranslationContextLocation.command_description),
        )
        is None
    )


async def test_commands_declared_as_the_cogs_will_sync_with_chinese_localisations() -> None:
    """The payload discord.py sends on sync, for commands declared by the convention."""
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    translator = CatalogueTranslator()
    await tree.set_translator(translator)

    @app_commands.command(name=L("cmd.blend.name"), description=L("cmd.blend.description"))
    @app_commands.rename(
        **{f"image{n}": L(f"cmd.blend.image{n}.name") for n in range(1, 6)}, dimensions=L("cmd.blend.dimensions.name")
    )
    @app_commands.describe(
        **{f"image{n}": L(f"cmd.blend.image{n}.description") for n in range(1, 6)},
        dimensions=L("cmd.blend.dimensions.description"),
    )
    @app_commands.choices(
        dimensions=[
            app_commands.Choice(name=L(f"cmd.blend.dimensions.choice.{value}"), value=value)
            for value in ("portrait", "square", "landscape")
        ]
    )
    async def blend(
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: str = "square",
    ) -> None:
        pass

    mj = app_commands.Group(name=L("cmd.mj.name"), description=L("cmd.mj.description"))

    @mj.command(name=L("cmd.mj.status.name"), description=L("cmd.mj.status.description"))
    async def status(interaction: discord.Interaction) -> None:
        pass

    try:
        payload = await blend.get_translated_payload(tree, translator)
        assert payload["name"] == "blend"
        assert payload["name_localizations"] == {"zh-CN": "混图"}
        assert payload["description_localizations"] == {"zh-CN": "将 2 到 5 张图片混合成一张"}
        options = {option["name"]: option for option in payload["options"]}
        assert options["image1"]["name_localizations"] == {"zh-CN": "图片1"}
        dimensions = options["dimensions"]
        assert dimensions["name_localizations"] == {"zh-CN": "比例"}
        assert {choice["value"]: choice["name_localizations"] for choice in dimensions["choices"]} == {
            "portrait": {"zh-CN": "竖图 (2:3)"},
            "square": {"zh-CN": "方图 (1:1)"},
            "landscape": {"zh-CN": "横图 (3:2)"},
        }

        group = await mj.get_translated_payload(tree, translator)
        assert group["name_localizations"] == {"zh-CN": "mj"}
        assert group["description_localizations"] == {"zh-CN": "mjbot 管理"}
        assert group["options"][0]["name_localizations"] == {"zh-CN": "状态"}
    finally:
        await client.close()


# --- the cogs, as they declare their commands -----------------------------------------------------


class Recorder(app_commands.Translator):
    """Notes every text discord.py asks to translate: (key, English, where)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str | None, str, str]] = set()

    async def translate(self, string: locale_str, locale: discord.Locale, context: TranslationContext) -> None:
        self.seen.add((string.extras.get("key"), string.message, context.location.name))
        return None


def cog_commands() -> list[app_commands.Command | app_commands.Group]:
    from bot.discord.cogs import admin, animate, credits, describe, history, imagine, member

    cogs = (
        imagine.ImagineCog,
        describe.DescribeCog,
        animate.AnimateCog,
        history.JobsCog,
        member.MemberCog,
        admin.AdminCog,
        credits.CreditsCog,
    )
    return [command for cog in cogs for command in cog.__cog_app_commands__]


async def cog_payloads(translator: app_commands.Translator) -> list[dict]:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    try:
        return [await command.get_translated_payload(tree, translator) for command in cog_commands()]
    finally:
        await client.close()


async def test_the_cogs_declare_every_command_text_with_the_key_and_english_of_command_texts() -> None:
    recorder = Recorder()
    await cog_payloads(recorder)
    declared = {key: message for key, message, _ in recorder.seen}
    assert None not in declared, f"texts declared without a key: {[m for k, m, _ in recorder.seen if k is None]}"
    assert declared == COMMAND_TEXTS


async def test_every_command_text_of_the_cogs_reaches_discord_in_chinese() -> None:
    untranslated: list[str] = []

    def walk(node: dict, where: str) -> None:
        where = f"{where}/{node['name']}"
        if "zh-CN" not in node.get("name_localizations", {}):
            untranslated.append(f"{where} (name)")
        if "description" in node and "zh-CN" not in node.get("description_localizations", {}):
            untranslated.append(f"{where} (description)")
        for choice in node.get("choices", []):
            if "zh-CN" not in choice.get("name_localizations", {}):
                untranslated.append(f"{where} choice {choice['value']}")
        for option in node.get("options", []):
            walk(option, where)

    for payload in await cog_payloads(CatalogueTranslator()):
        walk(payload, "")
    assert not untranslated
