"""Restarts and Discord trouble: the bot finishes what it started and keeps serving."""

from __future__ import annotations

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.e2e.flavours import sim  # noqa: F401  (every scenario runs against each server)
from tests.e2e.harness import (
    custom_id,
    imagine_grid,
    public_messages,
    wait_final,
    wait_public,
)


async def test_restart_finishes_the_same_message_and_old_buttons_work(start_bot, dd: DiscordDouble, sim: ProxySim):
    first = await start_bot()
    grid_task, grid = await imagine_grid(dd, sim, "an old grid")
    await dd.slash("imagine", {"prompt": "a slow fox"})
    message = await wait_public(dd, 2)
    task_id = next(t for t in sim.tasks if sim.tasks[t].prompt == "a slow fox")
    sim.advance(task_id)
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(40%)"), what="40%")
    assert await first.stop() == 0  # SIGTERM: a clean exit

    sim.advance(task_id)  # the proxy goes on while the bot is away
    sim.succeed(task_id)
    await start_bot()
    await wait_final(dd, message)
    assert message.current.attachments[0].data == sim.image_bytes(task_id)
    assert len(public_messages(dd)) == 2  # the same message finished; nothing posted twice

    await dd.click(grid.id, custom_id(grid, "U1"))
    upscale = await wait_public(dd, 3)
    assert upscale.reply_to == grid.id
    up_task = next(t for t in sim.tasks if sim.tasks[t].action == "UPSCALE")
    assert sim.tasks[up_task].parent_id == grid_task
    sim.succeed(up_task)
    await wait_final(dd, upscale)


async def test_rate_limited_edit_is_retried(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "a fox"})
    message = await wait_public(dd, 1)
    rule = dd.fail_next(method="PATCH", path_re=rf"/messages/{message.id}$", status=429)
    task_id = next(iter(sim.tasks))
    sim.advance(task_id)
    await dd.wait_for(lambda: message.content.endswith("(10%)"), what="10% after the 429")
    assert len(rule.hits) == 1
    sim.succeed(task_id)
    await wait_final(dd, message)


async def test_dropped_gateway_is_resumed(bot, dd: DiscordDouble, sim: ProxySim):
    await imagine_grid(dd, sim, "before the drop")
    resumed = dd.resume_count
    await dd.drop_gateway()
    await dd.wait_for(lambda: dd.resume_count > resumed, what="RESUME")
    _, grid = await imagine_grid(dd, sim, "after the drop")
    assert grid.current.attachments


async def test_deleted_message_stops_being_edited(bot, dd: DiscordDouble, sim: ProxySim):
    await dd.slash("imagine", {"prompt": "doomed"})
    message = await wait_public(dd, 1)
    doomed = next(iter(sim.tasks))
    await dd.delete_message(message.id)
    edits = rf"/messages/{message.id}$"
    sim.advance(doomed)
    await dd.wait_for(lambda: dd.find_requests("PATCH", edits), what="the edit that finds it gone")
    sim.advance(doomed)
    sim.succeed(doomed)
    # The bot keeps serving: the next job goes through while the doomed one is left alone.
    _, grid = await imagine_grid(dd, sim, "next one")
    assert grid.current.attachments
    assert len(dd.find_requests("PATCH", edits)) == 1
