"""Faults injected one by one: the proxy misbehaving while jobs are tracked, the bot killed at bad
moments, and Discord trouble. Each test fails without the handling it names."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.sandbox.discord_double import ALL_TEXT_PERMISSIONS, DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.harness import (
    custom_id,
    imagine_grid,
    public_messages,
    task_for,
    wait_final,
    wait_public,
)

ATTACH_FILES = 1 << 15


def messages_for(dd: DiscordDouble, prompt: str):
    return [m for m in public_messages(dd) if m.content.startswith(f"**{prompt}**")]


# --- the proxy misbehaves while jobs are tracked --------------------------------------------------


@pytest.mark.parametrize("kind", ["delay:2.5", "http500_spring", "html502", "malformed", "empty200", "status:503"])
async def test_tracking_survives_proxy_faults(bot, dd: DiscordDouble, sim: ProxySim, kind):
    await dd.slash("imagine", {"prompt": "fox one"})
    await dd.slash("imagine", {"prompt": "fox two"})
    first, second = await wait_public(dd, 1), await wait_public(dd, 2)
    sim.fail_next("/task/list-by-condition", kind, times=3)
    sim.succeed(task_for(sim, "fox one"))
    sim.succeed(task_for(sim, "fox two"))
    for message in (first, second):  # every unfinished task finishes once the proxy answers again
        await wait_final(dd, message)
    await sim.wait_for(lambda: "tracking 2 tasks failed" in bot.log_text(), timeout=5)


async def test_tracking_survives_the_proxy_going_away(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "patient fox"})
    message = await wait_public(dd, 1)
    task_id = task_for(sim, "patient fox")
    await sim.set_down(True)
    await sim.wait_for(lambda: "ProxyUnreachable" in bot.log_text(), timeout=10)
    # While it is down, a new /imagine gets a clear answer.
    refused = await dd.slash("imagine", {"prompt": "another fox"})
    await dd.wait_for(lambda: refused.original and "unreachable" in refused.original.content, what="down notice")
    assert refused.original.ephemeral
    await sim.set_down(False)
    sim.succeed(task_id)
    await wait_final(dd, message)


async def test_task_stuck_in_submitted_hits_the_deadline(start_bot, configure, dd: DiscordDouble, sim: ProxySim):
    configure(deadline_s=1)
    await start_bot()
    await dd.slash("imagine", {"prompt": "stuck fox"})
    message = await wait_public(dd, 1)
    await dd.wait_for(lambda: "(Failed: no result after 1 s" in message.content, what="the deadline")


async def test_vanished_task_is_failed(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "ghost fox"})
    message = await wait_public(dd, 1)
    sim.forget(task_for(sim, "ghost fox"))
    await dd.wait_for(lambda: "(Failed: the proxy lost this task" in message.content, what="lost task")


# --- the bot is killed at bad moments -------------------------------------------------------------


async def test_killed_after_submit_before_the_answer(start_bot, dd: DiscordDouble, sim: ProxySim):
    bot = await start_bot()
    sim.fail_next("/submit/imagine", "delay:1")
    await dd.slash("imagine", {"prompt": "interrupted fox"})
    await sim.wait_for(lambda: sim.count("/submit/imagine") == 1)
    await bot.kill()
    await sim.wait_for(lambda: any(t.prompt == "interrupted fox" for t in sim.tasks.values()))
    assert messages_for(dd, "interrupted fox") == []
    await start_bot()
    message = await wait_public(dd, 1)
    sim.succeed(task_for(sim, "interrupted fox"))
    await wait_final(dd, message)
    assert len(messages_for(dd, "interrupted fox")) == 1


async def test_killed_during_progress(start_bot, dd: DiscordDouble, sim: ProxySim):
    bot = await start_bot()
    await dd.slash("imagine", {"prompt": "busy fox"})
    message = await wait_public(dd, 1)
    task_id = task_for(sim, "busy fox")
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="10%")
    await bot.kill()
    sim.advance(task_id)
    await start_bot()
    await dd.wait_for(lambda: message.content.endswith("(40%)"), what="40% after the restart")
    sim.succeed(task_id)
    await wait_final(dd, message)
    assert len(public_messages(dd)) == 1


async def test_killed_during_a_click(start_bot, dd: DiscordDouble, sim: ProxySim):
    bot = await start_bot()
    grid_task, grid = await imagine_grid(dd, sim, "clicked fox")
    sim.fail_next("/submit/change", "delay:1")
    await dd.click(grid.id, custom_id(grid, "U3"))
    await sim.wait_for(lambda: sim.count("/submit/change") == 1)
    await bot.kill()
    await sim.wait_for(lambda: any(t.action == "UPSCALE" for t in sim.tasks.values()))
    await start_bot()
    upscale = await wait_public(dd, 2)
    assert upscale.reply_to == grid.id
    up_task = next(t.id for t in sim.tasks.values() if t.action == "UPSCALE")
    sim.succeed(up_task)
    await wait_final(dd, upscale)
    await dd.wait_for(lambda: grid.current.component(custom_id(grid, "U3"))["style"] == 1, what="U3 used")
    assert len(public_messages(dd)) == 2 and sim.count("/submit/change") == 1


async def test_same_button_twice_submits_once(bot, dd: DiscordDouble, sim: ProxySim):
    _, grid = await imagine_grid(dd, sim, "popular fox")
    sim.fail_next("/submit/change", "delay:0.3")
    first = await dd.click(grid.id, custom_id(grid, "V2"))
    second = await dd.click(grid.id, custom_id(grid, "V2"))
    await wait_public(dd, 2)
    await dd.wait_for(lambda: second.followups, what="an answer to the second click")
    assert second.followups[0].ephemeral and "just pressed" in second.followups[0].content
    assert first.followups == []
    third = await dd.click(grid.id, custom_id(grid, "V2"))
    await dd.wait_for(lambda: third.followups, what="an answer to the third click")
    assert "already used" in third.followups[0].content
    assert sim.count("/submit/change") == 1 and len(public_messages(dd)) == 2


# --- Discord trouble ------------------------------------------------------------------------------


async def test_server_error_on_an_edit_is_survived(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "fox"})
    message = await wait_public(dd, 1)
    rule = dd.fail_next(method="PATCH", path_re=rf"/messages/{message.id}$", status=500)
    sim.succeed(task_for(sim, "fox"))
    await wait_final(dd, message)
    assert len(rule.hits) == 1


async def test_missing_permission_is_named_before_submitting(bot, dd: DiscordDouble, sim: ProxySim):
    interaction = await dd.slash("imagine", {"prompt": "fox"}, app_permissions=ALL_TEXT_PERMISSIONS & ~ATTACH_FILES)
    await dd.wait_for(lambda: interaction.original and not interaction.original.current.loading, what="answer")
    assert interaction.original.ephemeral and '"Attach Files"' in interaction.original.content
    assert sim.count("/submit/imagine") == 0 and public_messages(dd) == []


async def test_forbidden_channel_is_reported_to_the_member(bot, dd: DiscordDouble, sim: ProxySim):
    """A click's reply is the bot's own post in the channel: without the permission for it, the
    member who clicked is told which permission is missing."""
    _, grid = await imagine_grid(dd, sim, "fox")
    dd.fail_next(method="POST", path_re=r"^/channels/\d+/messages$", status=403)
    click = await dd.click(grid.id, custom_id(grid, "U1"))
    await dd.wait_for(lambda: click.followups, what="the answer to the click")
    assert click.followups[0].ephemeral and "permission" in click.followups[0].content
    assert len(public_messages(dd)) == 1


async def test_job_messages_outlive_the_interaction_token(bot, dd: DiscordDouble, sim: ProxySim):
    """A job's message is edited through the command's webhook while its token lives; when the
    token is gone (jobs over 15 minutes), the bot token edits it through the channel."""
    interaction = await dd.slash("imagine", {"prompt": "long fox"})
    message = await wait_public(dd, 1)
    task_id = task_for(sim, "long fox")
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="10%")
    assert dd.find_requests("PATCH", rf"^/webhooks/.*/messages/{message.id}$")  # the webhook's own budget
    dd.fail_next(
        path_re=r"^/webhooks/", status=404, times=1000, body={"message": "Unknown Webhook", "code": 10015}
    )  # the token has expired
    sim.advance(task_id)
    sim.succeed(task_id)
    await wait_final(dd, message)
    final = [r for r in dd.requests if r.path.endswith(f"/messages/{message.id}") and r.status == 200]
    assert final[-1].path.startswith("/channels/")
    assert interaction.acknowledged


async def test_sigint_shuts_down_cleanly(bot, dd: DiscordDouble, sim: ProxySim, tmp_path: Path):
    import signal

    await dd.slash("imagine", {"prompt": "fox"})
    await wait_public(dd, 1)
    assert await bot.stop(signal.SIGINT) == 0
    assert "shutting down" in bot.log_text()
    db = tmp_path / "mjbot.sqlite3"
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0  # closed cleanly
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL").fetchone()[0] == 1
