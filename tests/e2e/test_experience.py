"""The rest of the Midjourney experience, end to end: /describe, /blend, /jobs, /show, ❌, the
translated prompt, and a Chinese-speaking member."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import DESCRIBED, ProxySim
from tests.e2e.harness import (
    GRID_LABELS,
    PNG_TYPE,
    answer_to,
    button_rows,
    custom_id,
    imagine_grid,
    picture,
    wait_final,
    wait_public,
)


async def test_describe_then_press_2(bot, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    await dd.slash("describe", attachments={"image": ("fox.png", picture(sim), PNG_TYPE)}, user=alice)
    message = await wait_public(dd, 1)
    task_id = next(t.id for t in sim.tasks.values() if t.action == "DESCRIBE")
    sim.succeed(task_id)
    await dd.wait_for(lambda: "1️⃣" in message.content and message.current.attachments, what="four prompts")
    for number, prompt in enumerate(DESCRIBED, start=1):
        assert f"{'1️⃣ 2️⃣ 3️⃣ 4️⃣'.split()[number - 1]} {prompt.replace('*', '')}" in message.content
    assert button_rows(message)[0] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "❌"]

    await dd.click(message.id, custom_id(message, "2️⃣"), user=bob)  # for whoever presses
    imagined = await wait_public(dd, 2)
    assert imagined.content.startswith(f"**{DESCRIBED[1].replace('*', '')}** - <@{bob}>")
    assert sim.last_request("/submit/imagine").json["prompt"] == DESCRIBED[1]


async def test_blend_three_images_then_upscale(bot, dd: DiscordDouble, sim: ProxySim):
    images = {f"image{n}": (f"{n}.png", picture(sim), PNG_TYPE) for n in (1, 2, 3)}
    await dd.slash("blend", {"dimensions": "PORTRAIT"}, attachments=images)
    message = await wait_public(dd, 1)
    body = sim.last_request("/submit/blend").json
    assert len(body["base64Array"]) == 3 and body["dimensions"] == "PORTRAIT"
    blend_task = next(t.id for t in sim.tasks.values() if t.action == "BLEND")
    sim.succeed(blend_task)
    await wait_final(dd, message)
    assert button_rows(message) == GRID_LABELS
    await dd.click(message.id, custom_id(message, "U1"))
    upscale = await wait_public(dd, 2)
    up_task = next(t.id for t in sim.tasks.values() if t.action == "UPSCALE")
    assert sim.tasks[up_task].parent_id == blend_task
    sim.succeed(up_task)
    await wait_final(dd, upscale)


async def test_jobs_lists_my_jobs_in_pages(bot, dd: DiscordDouble, sim: ProxySim, tmp_path: Path):
    alice, bob = dd.members
    now = time.time()
    with sqlite3.connect(tmp_path / "mjbot.sqlite3", timeout=10) as raw:
        for n in range(10):  # ten finished jobs of alice's, one of bob's
            raw.execute(
                "INSERT INTO jobs (task_id, action, prompt, owner_id, guild_id, channel_id, message_id, "
                "status, display, created_at, updated_at, finished_at) VALUES (?, 'IMAGINE', ?, ?, ?, ?, ?, "
                "'SUCCESS', 'done', ?, ?, ?)",
                (f"90{n}", f"fox number {n}", alice, dd.guild_id, dd.channel_id, 1000 + n, now + n, now + n, now + n),
            )
        raw.execute(
            "INSERT INTO jobs (task_id, action, prompt, owner_id, guild_id, channel_id, status, display, "
            "created_at, updated_at) VALUES ('999', 'IMAGINE', 'bob''s', ?, ?, ?, 'SUCCESS', 'done', ?, ?)",
            (bob, dd.guild_id, dd.channel_id, now, now),
        )
    listing = await dd.slash("jobs", user=alice)
    await dd.wait_for(lambda: listing.original is not None, what="the list")
    first = listing.original.current
    assert listing.original.ephemeral
    text = first.embeds[0]["description"]
    assert text.index("fox number 9") < text.index("fox number 2")  # newest first
    assert "fox number 1" not in text and "bob's" not in text
    assert f"/channels/{dd.guild_id}/{dd.channel_id}/1009" in text  # a link to the message
    previous, following = first.buttons
    assert previous["disabled"] and not following.get("disabled")
    page = await dd.click(listing.original.id, following["custom_id"], user=alice)
    await dd.wait_for(
        lambda: page.acknowledged and "fox number 1" in listing.original.current.embeds[0]["description"], what="page 2"
    )
    second = listing.original.current.embeds[0]["description"]
    assert "fox number 0" in second and "fox number 9" not in second
    assert listing.original.current.buttons[1].get("disabled")


async def test_show_a_job_from_before_a_restart(start_bot, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    first = await start_bot()
    grid_task, grid = await imagine_grid(dd, sim, "a fox to show")
    await first.stop()
    await start_bot()
    stranger = await dd.slash("show", {"job_id": grid_task}, user=bob)
    assert "Only <@" in await answer_to(dd, stranger)
    unknown = await dd.slash("show", {"job_id": "12345"}, user=alice)
    assert "don't know that job" in await answer_to(dd, unknown)
    shown = await dd.slash("show", {"job_id": grid_task}, user=alice)
    await dd.wait_for(lambda: shown.original is not None and shown.original.current.attachments, what="the job again")
    again = shown.original
    assert not again.ephemeral and again.content.startswith("**a fox to show**")
    assert again.current.attachments[0].data == sim.image_bytes(grid_task)
    assert button_rows(again) == GRID_LABELS
    await dd.click(again.id, custom_id(again, "U4"), user=alice)  # its buttons work
    upscale = await wait_public(dd, 3)  # the grid, the grid shown again, the upscale
    up_task = next(t.id for t in sim.tasks.values() if t.action == "UPSCALE")
    assert sim.tasks[up_task].index == 4 and upscale.reply_to == grid.id


async def test_owner_deletes_with_the_button_or_the_reaction(bot, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    _, grid = await imagine_grid(dd, sim, "first fox")
    refused = await dd.click(grid.id, custom_id(grid, "❌"), user=bob)
    assert "Only <@" in await answer_to(dd, refused)
    assert not grid.deleted
    await dd.click(grid.id, custom_id(grid, "❌"), user=alice)
    await dd.wait_for(lambda: grid.deleted, what="the grid deleted")

    _, other = await imagine_grid(dd, sim, "second fox")
    for user in (bob, alice):  # bob's ❌ is ignored; alice's deletes
        await dd.gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": str(user),
                "channel_id": str(dd.channel_id),
                "message_id": str(other.id),
                "guild_id": str(dd.guild_id),
                "emoji": {"id": None, "name": "❌"},
                "type": 0,
                "burst": False,
            },
        )
    await dd.wait_for(lambda: other.deleted, what="the reaction to delete it")
    assert other.deleted_by is not None


async def test_translated_prompt_is_shown(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "一只红色的狐狸"})
    message = await wait_public(dd, 1)
    task = next(iter(sim.tasks.values()))
    task.prompt_en = "a red fox"
    sim.succeed(task.id)
    await wait_final(dd, message)
    assert message.content.startswith("**一只红色的狐狸** - ") and "English prompt: a red fox" in message.content


async def test_commands_carry_chinese_localisations(bot, dd: DiscordDouble):
    for name in ("imagine", "describe", "blend", "jobs", "show", "mj"):
        command = dd.command(name, dd.guild_id)
        assert command.get("name_localizations", {}).get("zh-CN"), name
        assert command.get("description_localizations", {}).get("zh-CN"), name
    imagine = dd.command("imagine", dd.guild_id)
    assert imagine["options"][0]["description_localizations"]["zh-CN"]


async def test_a_chinese_member_sees_the_imagine_flow_in_chinese(bot, dd: DiscordDouble, sim: ProxySim):
    from bot.core.i18n import t

    empty = await dd.slash("imagine", {"prompt": "  "}, locale="zh-CN")
    assert await answer_to(dd, empty) == t("input.empty_prompt", "zh-CN")
    sim.max_running = 0
    await dd.slash("imagine", {"prompt": "狐狸"}, locale="zh-CN")
    message = await wait_public(dd, 1)
    assert t("status.queued", "zh-CN", ahead=0) in message.content or t("status.waiting", "zh-CN") in message.content
    task_id = next(iter(sim.tasks))
    sim.advance(task_id)
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="progress")
    sim.fail(task_id, "任务超时")
    await dd.wait_for(lambda: t("status.failed", "zh-CN", reason="任务超时") in message.content, what="failure")
    assert t("status.failed", "en", reason="任务超时") not in message.content
