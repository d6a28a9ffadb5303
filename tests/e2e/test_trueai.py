"""trueai's own buttons after an upscale: Vary (Strong), and Custom Zoom through a Discord modal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import (
    button_rows,
    custom_id,
    imagine_grid,
    upscaled,
    wait_final,
    wait_public,
)

# trueai Models/TaskInfo.cs OnUpscaleButtons, for a v7 prompt (the simulator's default version).
UPSCALE_LABELS = [
    ["Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)", "Vary (Region)"],
    ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "⬅️", "➡️"],
    ["⬆️", "⬇️", "Animate (High motion)", "Animate (Low motion)", "🔄"],
    ["❌"],
]


@pytest.fixture
async def sim() -> AsyncIterator[ProxySim]:
    async with ProxySim(secret=PROXY_SECRET, flavour="trueai", long_custom_ids=True) as server:
        yield server


async def test_upscale_then_vary_strong(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure()
    await start_bot()
    up_task, upscale = await upscaled(dd, sim)
    assert button_rows(upscale) == UPSCALE_LABELS
    assert any(len(b["customId"]) > 100 for b in sim.tasks[up_task].buttons)  # still one short Discord id each

    await dd.click(upscale.id, custom_id(upscale, "Vary (Strong)"))
    varied = await wait_public(dd, 3)
    assert varied.reply_to == upscale.id
    body = sim.last_request("/submit/action").json
    assert body["taskId"] == up_task and "::high_variation::" in body["customId"]
    vary_task = next(t.id for t in sim.tasks.values() if t.action == "VARIATION")
    sim.succeed(vary_task)
    await wait_final(dd, varied)
    assert button_rows(varied) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4", "❌"]]
    await dd.wait_for(
        lambda: upscale.current.component(custom_id(upscale, "Vary (Strong)"))["style"] == 1,
        what="Vary (Strong) shown as used",
    )


async def test_upscale_then_custom_zoom_through_a_modal(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure()
    await start_bot()
    up_task, upscale = await upscaled(dd, sim)
    click = await dd.click(upscale.id, custom_id(upscale, "Custom Zoom"))
    await dd.wait_for(lambda: click.modal is not None, what="the prompt form")
    field = click.modal["components"][0]["components"][0]
    assert field["value"] == sim.tasks[up_task].final_prompt  # prefilled with the last prompt
    assert sim.count("/submit/action") == 1  # nothing submitted before the member answers

    await dd.submit_modal(click, {field["custom_id"]: "a lighthouse at dusk --zoom 2"})
    zoomed = await wait_public(dd, 3)
    assert sim.last_request("/submit/modal").json["prompt"] == "a lighthouse at dusk --zoom 2"
    zoom_task = sim.last_request("/submit/modal").json["taskId"]
    sim.succeed(zoom_task)
    await wait_final(dd, zoomed)
    assert zoomed.reply_to == upscale.id and zoomed.content.startswith("**a lighthouse at dusk --zoom 2**")
    assert zoomed.current.attachments[0].data == sim.image_bytes(zoom_task)


async def test_speed_mode_uses_the_mode_paths(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(proxy_mode="relax")
    await start_bot()
    _, grid = await imagine_grid(dd, sim, "a slow lighthouse")
    assert sim.count("/mj-relax/mj/submit/imagine") == 1
    assert sim.count("/mj-relax/mj/task/list-by-condition") >= 1
    assert sim.tasks[next(iter(sim.tasks))].mode == "RELAX"
    assert grid.current.attachments


def button_rows_raw(message):
    return [row["components"] for row in message.current.components]


async def test_remix_mode_asks_for_the_prompt_with_the_pencil(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    """An account in Remix mode makes V1 wait in MODAL: the job shows ✏️, which opens the form."""
    configure()
    await start_bot()
    _, grid = await imagine_grid(dd, sim, "a harbour")
    sim.remix = True
    await dd.click(grid.id, custom_id(grid, "V1"))
    varied = await wait_public(dd, 2)
    await dd.wait_for(lambda: varied.content.endswith("(Waiting for a prompt: press ✏️)"), what="the pencil")
    pencil = varied.current.buttons[0]["custom_id"]
    stranger = await dd.click(varied.id, pencil, user=dd.members[1])
    await dd.wait_for(lambda: stranger.acknowledged, what="the stranger's answer")
    assert stranger.ephemeral and "Only <@" in stranger.callback.content and stranger.modal is None
    click = await dd.click(varied.id, pencil)
    await dd.wait_for(lambda: click.modal is not None, what="the prompt form")
    field = click.modal["components"][0]["components"][0]
    await dd.submit_modal(click, {field["custom_id"]: "a harbour at night"})
    await sim.wait_for(lambda: sim.count("/submit/modal") == 1)
    task_id = sim.last_request("/submit/modal").json["taskId"]
    assert sim.last_request("/submit/modal").json["prompt"] == "a harbour at night"
    sim.succeed(task_id)
    await wait_final(dd, varied)
    assert varied.content.startswith("**a harbour at night**")
