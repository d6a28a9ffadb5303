"""What a member sees: /imagine through progress to a grid, and the buttons on it."""

from __future__ import annotations

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.flavours import sim  # noqa: F401  (every scenario runs against each server)
from tests.e2e.harness import (
    GRID_LABELS,
    button_rows,
    custom_id,
    imagine_grid,
    wait_final,
    wait_public,
)

DEFERRED_UPDATE = 6


async def test_startup_registers_imagine(bot, dd: DiscordDouble):
    command = dd.command("imagine", dd.guild_id)
    options = {o["name"]: o for o in command["options"]}
    assert options["prompt"]["type"] == 3 and options["prompt"].get("required") is True
    assert options["image"]["type"] == 11 and not options["image"].get("required", False)


async def test_imagine_progress_to_grid(bot, dd: DiscordDouble, sim: ProxySim):
    member = dd.members[1]
    interaction = await dd.slash("imagine", {"prompt": "a red fox"}, user=member)
    await dd.wait_for(lambda: interaction.acknowledged, what="the acknowledgement")
    assert interaction.ephemeral  # only the member sees "thinking"; the job message is public
    message = await wait_public(dd, 1)
    assert message.first.content == f"**a red fox** - <@{member}> (Waiting to start)"
    task_id = next(iter(sim.tasks))
    assert sim.tasks[task_id].prompt == "a red fox"

    sim.advance(task_id)  # 10% with a preview
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="10%")
    shown = message.current.embeds[0]["image"]["url"]
    if sim.flavour == "newapi":  # relay/relay-mj.go: a fresh ?rand= on every read until SUCCESS
        assert shown.startswith(sim.client_image_url(task_id) + "?rand=")
    else:
        assert shown == sim.preview_url(task_id, 1)
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(40%)"), what="40%")
    sim.succeed(task_id)
    await wait_final(dd, message)

    final = message.current
    assert final.content == f"**a red fox** - <@{member}>"
    assert [a.data for a in final.attachments] == [sim.image_bytes(task_id)]
    assert final.embeds == []
    assert button_rows(message) == GRID_LABELS
    contents = [v.content for v in message.versions]
    assert contents[0].endswith("(Waiting to start)") and contents[-1] == final.content
    assert [c for c in contents if c.endswith("%)")] == [  # in order, each state once
        f"**a red fox** - <@{member}> (10%)",
        f"**a red fox** - <@{member}> (40%)",
    ]
    # The ephemeral acknowledgement is gone once the public message is up.
    await dd.wait_for(lambda: interaction.original is None or interaction.original.deleted, what="ack deleted")


async def test_upscale_variation_and_reroll_reply_to_the_grid(bot, dd: DiscordDouble, sim: ProxySim):
    grid_task, grid = await imagine_grid(dd, sim)

    click = await dd.click(grid.id, custom_id(grid, "U2"))
    upscale = await wait_public(dd, 2)
    assert click.response_type == DEFERRED_UPDATE
    assert upscale.reply_to == grid.id
    up_task = next(t for t in sim.tasks if sim.tasks[t].action == "UPSCALE")
    assert sim.tasks[up_task].index == 2 and sim.tasks[up_task].parent_id == grid_task
    sim.succeed(up_task)
    await wait_final(dd, upscale)
    assert upscale.current.attachments[0].data == sim.image_bytes(up_task)
    if sim.flavour == "trueai":  # the server's own buttons after an upscale
        assert "Vary (Strong)" in [b.get("label") for b in upscale.current.buttons]
    else:  # novicezk cannot vary an upscale: only ❌
        assert button_rows(upscale) == [["❌"]]
    assert upscale.content.startswith("**a red fox** - Image #2")
    # U2 stays on the grid, shown as used.
    await dd.wait_for(lambda: grid.current.component(custom_id(grid, "U2"))["style"] == 1, what="U2 marked used")
    assert grid.current.component(custom_id(grid, "U1"))["style"] == 2
    assert [a.data for a in grid.current.attachments] == [sim.image_bytes(grid_task)]  # image kept

    await dd.click(grid.id, custom_id(grid, "V3"))
    variation = await wait_public(dd, 3)
    await dd.click(grid.id, custom_id(grid, "🔄"))
    reroll = await wait_public(dd, 4)
    for action, message in (("VARIATION", variation), ("REROLL", reroll)):
        task_id = next(t for t in sim.tasks if sim.tasks[t].action == action)
        sim.succeed(task_id)
        await wait_final(dd, message)
        assert message.reply_to == grid.id
        assert button_rows(message) == GRID_LABELS
        assert custom_id(message, "U1").endswith(task_id)
    if sim.flavour == "trueai":  # no /submit/change: the task's own reroll button
        body = sim.last_request("/submit/action").json
        assert body["taskId"] == grid_task and "::reroll::" in body["customId"]
    else:  # new-api refuses a REROLL without an index
        body = sim.last_request("/submit/change").json
        assert (body["taskId"], body["action"], body["index"]) == (grid_task, "REROLL", 1)
