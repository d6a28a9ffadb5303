"""The commands members reach for, end to end: /shorten -> a button -> /imagine, ⏹ cancel on trueai,
and each refused cleanly (or absent) on novicezk, which has none of them."""

from __future__ import annotations

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim, shortened_prompts
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import answer_to, button_rows, custom_id, imagine_grid, public_messages, task_for, wait_public

AUTH = {"trueai": "authorization", "novicezk": "mj-api-secret"}


@pytest.fixture(params=["trueai", "novicezk"])
async def sim(request):
    async with ProxySim(secret=PROXY_SECRET, flavour=request.param) as server:
        yield server


async def test_shorten_then_imagine_one(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(auth=AUTH[sim.flavour])
    await start_bot()
    prompt = "a very beautiful picture of an old lighthouse in the storm --ar 3:2"
    asked = await dd.slash("shorten", {"prompt": prompt})
    if sim.flavour == "novicezk":
        assert "can't shorten prompts" in await answer_to(dd, asked)
        assert public_messages(dd) == []
        return
    message = await wait_public(dd, 1)
    sim.succeed(task_for(sim, prompt))
    await dd.wait_for(lambda: "5️⃣" in message.content, what="the shorter prompts")
    assert button_rows(message) == [["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"], ["❌"]]
    _, bob = dd.members
    await dd.click(message.id, custom_id(message, "3️⃣"), user=bob)  # anyone may imagine one
    await wait_public(dd, 2)
    assert sim.last_request("/submit/imagine").json["prompt"] == shortened_prompts(prompt)[2]


async def test_cancel_a_running_job(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(auth=AUTH[sim.flavour])
    await start_bot()
    await dd.slash("imagine", {"prompt": "a slow fox"})
    message = await wait_public(dd, 1)
    task_id = task_for(sim, "a slow fox")
    sim.advance(task_id)
    await dd.wait_for(lambda: "%" in message.content, what="progress")
    if sim.flavour == "novicezk":  # it cannot cancel: no ⏹
        assert message.current.components == []
        return
    await dd.wait_for(lambda: message.current.components, what="the ⏹ under a running job")
    alice, bob = dd.members
    refused = await dd.click(message.id, custom_id(message, "⏹️"), user=bob)
    assert "Only <@" in await answer_to(dd, refused)
    asked = await dd.click(message.id, custom_id(message, "⏹️"), user=alice)
    assert "Cancelling" in await answer_to(dd, asked)
    await dd.wait_for(lambda: "Failed: 取消任务" in message.content, what="the cancelled job")


async def test_the_seed_by_reaction_reaches_only_its_owner(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(auth=AUTH[sim.flavour])
    await start_bot()
    _, grid = await imagine_grid(dd, sim, "a fox with a seed")
    alice, bob = dd.members
    for user in (bob, alice):  # bob's ✉️ is ignored; alice's brings her the seed
        await dd.gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": str(user),
                "channel_id": str(dd.channel_id),
                "message_id": str(grid.id),
                "guild_id": str(dd.guild_id),
                "emoji": {"id": None, "name": "✉️"},
                "type": 0,
                "burst": False,
            },
        )
    await dd.wait_for(lambda: dd.direct_messages(alice), what="the seed in a direct message")
    (letter,) = dd.direct_messages(alice)
    if sim.flavour == "novicezk":
        assert "can't look up seeds" in letter.content
    else:
        seed = sim.tasks[task_for(sim, "a fox with a seed")].seed
        assert f"**{seed}**" in letter.content and f"--seed {seed}" in letter.content
    assert dd.direct_messages(bob) == []
