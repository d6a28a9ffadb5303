"""Bad input and the admins' controls, end to end: each refusal is an ephemeral answer to the
member who caused it, and nothing is submitted, posted or stored."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.harness import (
    answer_to,
    custom_id,
    imagine_grid,
    public_messages,
    wait_final,
    wait_public,
)


async def crafted_button(dd: DiscordDouble, button_id: str) -> int:
    """A message of the bot's carrying a button we choose (as an old or tampered message would)."""
    message = await dd.state.create_message(
        channel_id=dd.channel_id,
        author_id=dd.bot_id,
        files=[],
        via="bot",
        payload={
            "content": "an old message",
            "components": [{"type": 1, "components": [{"type": 2, "style": 2, "label": "U1", "custom_id": button_id}]}],
        },
    )
    return message.id


# --- bad input ------------------------------------------------------------------------------------


async def test_bad_prompts(bot, dd: DiscordDouble, sim: ProxySim):
    cases = {
        "   ": "prompt is empty",
        "fox " * 1200: "too long",
        "a fox --ar 3": "--ar 3 is not valid",
    }
    for prompt, expected in cases.items():
        interaction = await dd.slash("imagine", {"prompt": prompt})
        assert expected in await answer_to(dd, interaction)
    assert sim.count("/submit/imagine") == 0 and public_messages(dd) == []


async def test_attachment_over_the_configured_size(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    configure(max_attachment_mb=0.01)
    await start_bot()
    png = sim.image_bytes(sim.add_task("x").id) + b"\0" * 20_000
    interaction = await dd.slash("imagine", {"prompt": "fox"}, attachments={"image": ("big.png", png, "image/png")})
    assert "too large (the limit is 0.01 MB)" in await answer_to(dd, interaction)
    assert sim.count("/submit/imagine") == 0


async def test_buttons_that_cannot_be_used(bot, dd: DiscordDouble, sim: ProxySim, tmp_path: Path):
    running = await dd.slash("imagine", {"prompt": "unfinished fox"})
    await wait_public(dd, 1)
    unfinished = next(iter(sim.tasks))
    # A finished job of another server, as if the database were shared or the id guessed.
    with sqlite3.connect(tmp_path / "mjbot.sqlite3", timeout=10) as raw:
        raw.execute(
            "INSERT INTO jobs (task_id, action, prompt, owner_id, guild_id, channel_id, status, display, "
            "created_at, updated_at, finished_at) VALUES ('4242', 'IMAGINE', 'x', ?, ?, ?, 'SUCCESS', "
            "'done', ?, ?, ?)",
            (dd.member_id, dd.guild_id + 1, dd.channel_id, time.time(), time.time(), time.time()),
        )
    cases = {
        "mj:q:7:???": "not valid any more",  # does not parse
        "mj:u:1:999999999": "don't know that job",  # unknown task
        f"mj:u:1:{unfinished}": "has not finished yet",
        "mj:u:1:4242": "don't know that job",  # another server's task: no more said than for unknown
    }
    for button_id, expected in cases.items():
        message_id = await crafted_button(dd, button_id)
        click = await dd.click(message_id, button_id)
        assert expected in await answer_to(dd, click), button_id
    assert sim.count("/submit/change") == 0
    assert running.user_id == dd.member_id


async def test_strangers_cannot_press_a_members_buttons(bot, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    _, grid = await imagine_grid(dd, sim)
    click = await dd.click(grid.id, custom_id(grid, "U1"), user=bob)
    assert f"Only <@{alice}>" in await answer_to(dd, click)
    assert sim.count("/submit/change") == 0


async def test_hostile_prompt_text_is_stored_and_shown_verbatim(bot, dd: DiscordDouble, sim: ProxySim):
    prompt = '\'); DROP TABLE jobs; -- 🐱 猫 "quoted"'
    await dd.slash("imagine", {"prompt": prompt})
    message = await wait_public(dd, 1)
    sim.succeed(next(iter(sim.tasks)))
    await wait_final(dd, message)
    assert sim.tasks[next(iter(sim.tasks))].prompt == prompt
    assert "DROP TABLE jobs; -- 🐱 猫" in message.content


# --- admin controls -------------------------------------------------------------------------------


async def test_channel_role_and_banned_word_rules(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    configure(
        extra=f"[access]\nallowed_channel_ids = [{dd.channel_id}]\nallowed_role_ids = [{dd.role_id}]\n"
        f'banned_words = ["Gore"]\n'
    )
    await start_bot()
    elsewhere = await dd.slash("imagine", {"prompt": "fox"}, channel=dd.second_channel_id)
    assert f"<#{dd.channel_id}>" in await answer_to(dd, elsewhere)
    without_role = await dd.slash("imagine", {"prompt": "fox"}, user=bob)
    assert f"<@&{dd.role_id}>" in await answer_to(dd, without_role)
    banned = await dd.slash("imagine", {"prompt": "so much gore"}, user=alice)
    assert '"Gore"' in await answer_to(dd, banned)
    assert sim.count("/submit/imagine") == 0
    allowed = await dd.slash("imagine", {"prompt": "a fox"}, user=alice)
    await wait_public(dd, 1)
    assert allowed.user_id == alice


async def test_running_limit_and_anyone_buttons(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    configure(extra='[access]\nbuttons = "anyone"\n', max_running_per_user=1)
    await start_bot()
    _, grid = await imagine_grid(dd, sim, "shared fox")
    await dd.click(grid.id, custom_id(grid, "U4"), user=bob)  # anyone may press
    await wait_public(dd, 2)
    over = await dd.slash("imagine", {"prompt": "one more"}, user=bob)
    assert "already have 1 jobs running" in await answer_to(dd, over)


async def test_mj_status_is_for_admins(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    alice, bob = dd.members
    configure(extra=f"[access]\nadmin_user_ids = [{alice}]\n")
    await start_bot()
    await dd.slash("imagine", {"prompt": "a queued fox"})
    await wait_public(dd, 1)
    refused = await dd.slash("mj status", user=bob)
    assert "Only the bot's admins" in await answer_to(dd, refused)
    status = await dd.slash("mj status", user=alice)
    text = await answer_to(dd, status)
    assert "Proxy: reachable" in text and "1 waiting to start" in text
    assert next(iter(sim.tasks)) in text
    await sim.set_down(True)
    down = await dd.slash("mj status", user=alice)
    assert "NOT reachable" in await answer_to(dd, down)


# --- secrets --------------------------------------------------------------------------------------


async def test_secrets_never_leak_in_a_failing_run(
    start_bot, configure, dd: DiscordDouble, sim: ProxySim, tmp_path: Path
):
    """A run where everything goes wrong: wrong secret, broken answers, Discord errors. Neither the
    Discord token nor the proxy secret may appear in anything the bot wrote."""
    secret = "proxy-secret-do-not-leak-4f9a"
    sim.secret = secret
    configure(secret="wrong-secret-also-private-77c1")
    bot = await start_bot()
    refused = await dd.slash("imagine", {"prompt": "fox"})
    assert "rejected the bot's credentials" in await answer_to(dd, refused)
    configure(secret=secret)
    await bot.stop()
    bot = await start_bot()
    sim.fail_next("/task/list-by-condition", "html502", times=2)
    sim.fail_next("/submit/imagine", "http500_spring")
    await answer_to(dd, await dd.slash("imagine", {"prompt": "fox"}))
    await dd.slash("imagine", {"prompt": "fox two"})
    message = await wait_public(dd, 1)
    dd.fail_next(method="PATCH", status=500)
    sim.succeed(next(t.id for t in sim.tasks.values() if t.prompt == "fox two"))
    await wait_final(dd, message)
    await bot.stop()

    written = bot.log_text() + "".join(
        f"{v.content}{v.embeds}{v.components}" for m in dd.messages.values() for v in m.versions
    )
    for private in (dd.bot_token, secret, "wrong-secret-also-private-77c1"):
        assert private not in written
    assert "401" in bot.log_text()  # the failures were logged, with context
