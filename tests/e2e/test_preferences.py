"""A member's own Midjourney end to end: /settings menus, /prefer suffix and options applied to what
is submitted (and shown in the message), /info, and each bad setting refused privately."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import answer_to, public_messages, task_for, wait_final, wait_public


@pytest.fixture
async def sim() -> AsyncIterator[ProxySim]:
    async with ProxySim(secret=PROXY_SECRET, flavour="trueai") as server:
        yield server


async def settings_panel(dd: DiscordDouble):
    asked = await dd.slash("settings")
    await dd.wait_for(lambda: asked.original and asked.original.current.components, what="the settings panel")
    return asked.original


async def test_settings_suffix_and_options_shape_what_is_sent(configure, start_bot, dd: DiscordDouble, sim):
    configure(auth="authorization", max_running_per_user=3)
    await start_bot()
    panel = await settings_panel(dd)
    assert panel.ephemeral and "Version: default" in panel.content
    await dd.select(panel.id, "mjs:version", ["6.1"])
    await dd.wait_for(lambda: "Version: 6.1" in panel.current.content, what="the panel to show version 6.1")
    await dd.select(panel.id, "mjs:stylize", ["high"])
    await dd.wait_for(lambda: "Stylize: high (250)" in panel.current.content, what="stylize high")

    assert "Suffix: `--ar 16:9`" in await answer_to(dd, await dd.slash("prefer suffix", {"value": "--ar 16:9"}))
    listed = await answer_to(dd, await dd.slash("prefer option set", {"name": "moody", "value": "dark clouds --c 20"}))
    assert "`--moody` → `dark clouds --c 20`" in listed

    await dd.slash("imagine", {"prompt": "a harbour --moody"})
    message = await wait_public(dd, 1)
    sent = "a harbour dark clouds --c 20 --ar 16:9 --v 6.1 --s 250"
    assert sim.last_request("/submit/imagine").json["prompt"] == sent
    assert message.content.startswith(f"**{sent}**")  # the message shows what was sent

    await dd.click(panel.id, "mjs:reset")
    await dd.wait_for(lambda: "Version: default" in panel.current.content, what="the reset")
    assert "Suffix: `--ar 16:9`" in panel.current.content  # reset is the settings, not the suffix

    info = await answer_to(dd, await dd.slash("info"))
    assert "Started today (UTC): 1 of no limit" in info and "Queued or running now: 1 of 3" in info


async def test_bad_preferences_are_refused_privately(configure, start_bot, dd: DiscordDouble, sim):
    configure(auth="authorization")
    await start_bot()
    cases = [
        ("prefer suffix", {"value": "--ar 3"}, "--ar"),
        ("prefer option set", {"name": "ar", "value": "--ar 2:3"}, "one of Midjourney's own parameters"),
        ("prefer option set", {"name": "two words", "value": "x"}, "one word"),
        ("prefer option set", {"name": "wide", "value": "--s 5000"}, "--s"),
        ("prefer option delete", {"name": "nothing"}, "no option called --nothing"),
    ]
    for command, options, expected in cases:
        assert expected in await answer_to(dd, await dd.slash(command, options))
    for n in range(20):
        await answer_to(dd, await dd.slash("prefer option set", {"name": f"o{n}", "value": "--s 100"}))
    assert "20 options, the most allowed" in await answer_to(
        dd, await dd.slash("prefer option set", {"name": "one_more", "value": "--s 100"})
    )
    assert public_messages(dd) == [] and sim.count("/submit/imagine") == 0


async def test_the_prompt_box_suggests_recent_prompts_parameters_and_options(configure, start_bot, dd, sim):
    configure(auth="authorization")
    await start_bot()
    await dd.slash("prefer option set", {"name": "moody", "value": "dark clouds --c 20"})
    await dd.slash("imagine", {"prompt": "a lighthouse in fog"})
    message = await wait_public(dd, 1)
    sim.succeed(task_for(sim, "a lighthouse in fog"))
    await wait_final(dd, message)
    asked = sim.count("")  # nothing runs any more: the bot has nothing to ask the proxy
    recent = await dd.autocomplete("imagine", {"prompt": "light"}, "prompt")
    await dd.wait_for(lambda: recent.choices is not None, what="the suggestions")
    assert [c["value"] for c in recent.choices] == ["light", "a lighthouse in fog"]
    params = await dd.autocomplete("imagine", {"prompt": "a harbour --"}, "prompt")
    await dd.wait_for(lambda: params.choices is not None, what="the parameter hints")
    values = [c["value"] for c in params.choices]
    assert "a harbour --moody" in values and "a harbour --ar 16:9" in values and "a harbour --v 7" in values
    assert len(values) <= 25 and all(len(v) <= 100 for v in values)
    assert recent.ack_s < 3 and params.ack_s < 3 and sim.count("") == asked  # no proxy call
