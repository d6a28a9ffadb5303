"""A member's preferences: how they shape the prompt that is sent, what is refused when they are set,
the prompt box's suggestions, and their storage on both engines (the option limit holds across
processes)."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.errors import BadOptionName, BadParameter, BadSetting, OptionNotFound, TooManyOptions
from bot.core.i18n import error_text
from bot.core.preferences import MAX_OPTIONS, Preferences, apply, check_option, check_suffix
from bot.core.prompt_help import MAX_CHOICE, suggestions
from bot.storage import Store
from tests.conftest import make_settings

PORTRAIT = {"portrait": "--ar 2:3 --s 250"}


@pytest.mark.parametrize(
    ("typed", "preferences", "sent"),
    [
        ("a fox", Preferences(), "a fox"),
        ("a fox", Preferences(version="7", stylize="high"), "a fox --v 7 --s 250"),
        ("a fox --v 6.1 --s 50", Preferences(version="7", stylize="high"), "a fox --v 6.1 --s 50"),  # typed wins
        ("a fox", Preferences(version="niji 6"), "a fox --niji 6"),
        ("a fox --niji", Preferences(version="7"), "a fox --niji"),
        ("a fox", Preferences(suffix="--ar 16:9"), "a fox --ar 16:9"),
        ("a fox --ar 16:9", Preferences(suffix="--ar 16:9"), "a fox --ar 16:9"),  # a recent prompt, sent with it
        # Words go before the parameters, whatever brings them: a suffix, an option after a parameter.
        (
            "a fox --ar 16:9",
            Preferences(suffix="cinematic lighting --s 50"),
            "a fox cinematic lighting --ar 16:9 --s 50",
        ),
        (
            "a fox --ar 2:3 --moody",
            Preferences(options={"moody": "dark clouds --c 20"}),
            "a fox dark clouds --ar 2:3 --c 20",
        ),
        ("a fox --no plants --moody", Preferences(options={"moody": "dark"}), "a fox dark --no plants"),
        ("a fox --portrait", Preferences(options=PORTRAIT), "a fox --ar 2:3 --s 250"),
        ("a fox --PORTRAIT", Preferences(options=PORTRAIT, stylize="low"), "a fox --ar 2:3 --s 250"),
        # An option whose value names another option is not expanded again: no loop.
        ("x --a", Preferences(options={"a": "--b", "b": "--a"}), "x --b"),
        ("x --a", Preferences(options={"a": "--a more"}), "x --a more"),
    ],
)
def test_what_is_sent(typed, preferences, sent):
    assert apply(typed, preferences) == sent


def test_a_sent_prompt_picked_again_is_sent_the_same():
    preferences = Preferences(suffix="soft light --ar 16:9", version="7", stylize="high", options=PORTRAIT)
    sent = apply("a fox --portrait", preferences)
    assert apply(sent, preferences) == sent == "a fox soft light --ar 2:3 --s 250 --v 7"


def test_a_suffix_that_breaks_every_prompt_is_refused_naming_the_parameter():
    with pytest.raises(BadParameter) as caught:
        check_suffix("--ar 3 --v 7")
    assert "--ar" in error_text(caught.value)
    with pytest.raises(BadSetting) as caught:
        check_suffix("--no " + "word " * 100)
    assert "300 characters" in error_text(caught.value)
    assert check_suffix("  --ar   16:9 ") == "--ar 16:9"


def test_option_names_and_the_limit():
    with pytest.raises(BadOptionName) as caught:
        check_option("ar", "--ar 2:3", {})
    assert "--ar is one of Midjourney's own parameters" in error_text(caught.value)
    with pytest.raises(BadOptionName):
        check_option("my option", "x", {})
    full = {f"o{n}": "x" for n in range(MAX_OPTIONS)}
    with pytest.raises(TooManyOptions) as caught:
        check_option("one_more", "x", full)
    assert "20 options" in error_text(caught.value)
    assert check_option("o3", "--s 5", full) == ("o3", "--s 5")  # replacing one is not adding
    assert check_option("--Portrait", "--ar 2:3", {}) == ("portrait", "--ar 2:3")


def test_suggestions():
    recent = ["a red fox in snow", "a lighthouse at dusk", "x" * (MAX_CHOICE + 1)]
    found = suggestions("fox", recent=recent)
    assert [s.value for s in found] == ["fox", "a red fox in snow"]
    found = suggestions("a fox --a", options={"autumn": "--s 750 warm tones"}, versions=["7", "niji 6"])
    values = [s.value for s in found]
    assert "a fox --autumn" in values and "a fox --ar 16:9" in values and "a fox --ar 9:16" in values
    assert all(len(s.value) <= MAX_CHOICE and len(s.name) <= MAX_CHOICE for s in found)
    versions = [s.value for s in suggestions("a fox --v", versions=["7", "6.1", "niji 6"])]
    assert versions[1:] == ["a fox --v 7", "a fox --v 6.1"]
    assert len(suggestions("--", options={f"o{n}": "x" for n in range(20)})) == 25


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request, tmp_path):
    url = str(tmp_path / "prefs.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    made = [Store(url), Store(url)]  # two processes' connections
    for store in made:
        await store.open()
    yield made
    for store in made:
        await store.close()


async def test_preferences_are_kept_per_member_and_server(stores):
    first, second = stores
    stored = await first.preferences.change(1, 11, lambda p: Preferences(version="7", suffix="--ar 16:9"))
    assert await second.preferences.get(1, 11) == stored
    assert await second.preferences.get(2, 11) == Preferences() == await second.preferences.get(1, 12)


async def test_two_processes_cannot_pass_the_option_limit_together(stores):
    async def add(store: Store, name: str) -> bool:
        def change(current: Preferences) -> Preferences:
            key, value = check_option(name, "--s 100", current.options)
            return Preferences(options={**current.options, key: value})

        try:
            await store.preferences.change(1, 11, change)
            return True
        except TooManyOptions:
            return False

    added = await asyncio.gather(*(add(stores[n % 2], f"opt{n}") for n in range(30)))
    assert sum(added) == MAX_OPTIONS and len((await stores[0].preferences.get(1, 11)).options) == MAX_OPTIONS


async def test_deleting_an_option_one_does_not_have(tmp_path, sim):
    from bot.core.access import AccessPolicy, Requester
    from bot.jobs.credits import Credits
    from bot.jobs.members import Members

    settings = make_settings(sim, tmp_path / "m.sqlite3")
    store = Store(settings.storage.database_url)
    await store.open()
    try:
        policy = AccessPolicy(settings.access)
        members = Members(settings, store, policy, Credits(settings, store, policy, clock=lambda: 0.0))
        who = Requester(user_id=11, guild_id=1, channel_id=2)
        with pytest.raises(OptionNotFound) as caught:
            await members.delete_option(who, "--portrait")
        assert "no option called --portrait" in error_text(caught.value)
        with pytest.raises(BadSetting):
            await members.set_setting(who, "speed", "relax")  # this server takes no per-job speed
        with pytest.raises(BadSetting):
            await members.set_setting(who, "version", "5.2")  # not one the server offers
        assert (await members.set_setting(who, "version", "6.1")).version == "6.1"
        settings.proxy.api = "change"  # novicezk's /submit/change: no server buttons, no Remix
        with pytest.raises(BadSetting):
            await members.set_setting(who, "remix", "on")
    finally:
        await store.close()


@pytest.mark.parametrize("versions", [["v 7"], ["default"], ["7", "7"], [str(n % 9 + 1) for n in range(25)]])
def test_versions_a_menu_cannot_show_are_refused_at_start(versions):
    from pydantic import ValidationError

    from bot.core.config import BotSettings

    with pytest.raises(ValidationError):
        BotSettings(versions=versions)
