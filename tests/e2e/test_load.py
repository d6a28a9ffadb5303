"""One message per job, following its task, also when updates race the first post (issue 12, item 5)."""

from __future__ import annotations

import os

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import (
    BotProcess,
    custom_id,
    imagine_grid,
    public_messages,
    wait_final,
    wait_public,
    write_config,
)


async def test_an_update_during_the_first_post_makes_no_second_message(bot, dd: DiscordDouble, sim: ProxySim):
    """The job's message is still being posted (its answer is slow) when the task moves on: the
    update waits for the post and edits that message; it neither posts a second one nor edits it
    through a route that does not own it."""
    # A busy channel: the bot's look for a message it may have posted reads its last 50 messages,
    # so under load its own post can be out of sight.
    for n in range(60):
        await dd.send_user_message(f"chatter {n}", user=dd.members[1])
    held = dd.delay_next(method="POST", path_re=r"^/webhooks/", seconds=1.0)
    await dd.slash("imagine", {"prompt": "a fox in a hurry"})
    await dd.wait_for(lambda: held.hits, what="the first post, held")
    task_id = next(iter(sim.tasks))
    sim.advance(task_id)  # seen by the next poll while the post's answer is still on its way
    await sim.wait_for(lambda: sim.count("/task/list-by-condition") >= 3)
    sim.succeed(task_id)
    message = await wait_public(dd, 1)
    await wait_final(dd, message)
    assert len(public_messages(dd)) == 1
    assert not [r for r in dd.requests if r.status == 404]


LOAD_JOBS = int(os.environ.get("MJBOT_LOAD_JOBS", "500"))
LOAD_CHANNELS = 20


async def test_hundreds_of_jobs_each_get_one_message_that_follows_the_task(tmp_path):
    """The independent load run, at a scale CI affords: 500 /imagine over 20 channels, push on and a
    poll every second, pushes delivered twice, tasks moving on their own clock. Every job has one
    public message, no message is given up, and each ends showing its task's final image."""
    from tests.e2e.harness import free_port

    port = free_port()
    async with (
        DiscordDouble(text_channels=LOAD_CHANNELS) as dd,
        ProxySim(
            secret=PROXY_SECRET, mode="time", step_s=1.0, jitter=0.5, seed=7, max_running=LOAD_JOBS, max_queue=LOAD_JOBS
        ) as sim,
    ):
        write_config(
            tmp_path / "config.toml",
            dd,
            sim,
            tmp_path / "mjbot.sqlite3",
            secret=PROXY_SECRET,
            poll_interval_s=1.0,
            extra=f'[notify]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}/mj/notify"\n',
        )
        bot = BotProcess(tmp_path / "config.toml", tmp_path / "bot.log")
        await bot.start(dd)
        try:
            sim.duplicate_next_deliveries(LOAD_JOBS)  # re-delivered, as the servers do
            for n in range(LOAD_JOBS):
                await dd.slash(
                    "imagine",
                    {"prompt": f"load job {n}"},
                    user=dd.members[n % 2],
                    channel=dd.channel_ids[n % LOAD_CHANNELS],
                )
            try:
                await sim.wait_for(
                    lambda: len(sim.tasks) == LOAD_JOBS and all(t.is_finished for t in sim.tasks.values()), timeout=120
                )
            except TimeoutError:
                raise AssertionError(
                    f"{len(sim.tasks)} tasks submitted, "
                    f"{sum(t.is_finished for t in sim.tasks.values())} finished:\n" + bot.log_tail(30)
                ) from None

            def finals_shown() -> int:
                return sum(1 for m in jobs_messages(dd) if m.current.attachments)

            await dd.wait_for(lambda: finals_shown() >= LOAD_JOBS, timeout=120, what="every final image")
            messages = jobs_messages(dd)
            by_prompt: dict[str, int] = {}
            for message in messages:
                prompt = message.content.split("**")[1]
                by_prompt[prompt] = by_prompt.get(prompt, 0) + 1
            duplicates = {p: c for p, c in by_prompt.items() if c > 1}
            assert not duplicates, f"{len(duplicates)} jobs with more than one message"
            assert len(by_prompt) == LOAD_JOBS
            assert "no more updates to its message" not in bot.log_text()
            assert all(m.current.attachments and "(" not in m.content.rsplit("-", 1)[-1] for m in messages)
            assert not dd.refusals and not [r for r in dd.requests if r.status == 404]
        finally:
            await bot.stop()


def jobs_messages(dd: DiscordDouble):
    return [
        m
        for channel in dd.channel_ids
        for m in dd.channel_messages(channel)
        if not m.ephemeral
        and m.origin in ("bot", "interaction")
        and not m.current.loading
        and m.content.startswith("**load job")
    ]


async def test_sigterm_during_a_click_answers_it_before_the_bot_stops(start_bot, dd: DiscordDouble, sim: ProxySim):
    """Stopping under load: the click under way is submitted and its message posted before the
    database closes; it does not crash with "Cannot operate on a closed database"."""
    bot = await start_bot()
    _, grid = await imagine_grid(dd, sim, "a fox at closing time")
    sim.fail_next("/submit/change", "delay:1.0")
    await dd.click(grid.id, custom_id(grid, "U1"))
    await sim.wait_for(lambda: sim.count("/submit/change") == 1)
    assert await bot.stop() == 0
    log = bot.log_text()
    assert "closed database" not in log and "Traceback" not in log
    assert len(public_messages(dd)) == 2  # the upscale's message, posted before the bot stopped
