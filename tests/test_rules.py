"""The jobs service's rules against the simulator and a real SQLite file: who may start jobs and
press buttons, per-member limits, one job per button, and tasks recovered after a crash."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.errors import (
    BadParameter,
    BannedWord,
    BotRestarting,
    ButtonAlreadyUsed,
    ButtonBusy,
    ChannelNotAllowed,
    DailyLimitReached,
    GuildNotAllowed,
    JobNotFound,
    NotJobOwner,
    PromptTooLong,
    ProxyEndpointMissing,
    ProxyTimeout,
    RoleNotAllowed,
    TooManyRunning,
)
from bot.core.models import Action, Phase, Status, Submission
from bot.sandbox.proxy_sim import ProxySim
from bot.storage import Conflict
from tests.service_harness import (
    ADMIN,
    CHANNEL,
    GUILD,
    OTHER,
    OWNER,
    ROLE,
    Harness,
    grid_of,
    who,
)

# --- access ---------------------------------------------------------------------------------------


async def test_guild_channel_and_role_rules(harness, sim):
    _, jobs, _ = await harness(
        access={
            "allowed_guild_ids": [GUILD],
            "allowed_channel_ids": [CHANNEL],
            "allowed_role_ids": [ROLE],
            "admin_user_ids": [ADMIN],
        }
    )
    with pytest.raises(GuildNotAllowed):
        await jobs.imagine("a fox", who(guild_id=999, role_ids=frozenset({ROLE})))
    with pytest.raises(ChannelNotAllowed) as channel:
        await jobs.imagine("a fox", who(channel_id=999, role_ids=frozenset({ROLE})))
    assert channel.value.params["channels"] == f"<#{CHANNEL}>"
    with pytest.raises(RoleNotAllowed) as role:
        await jobs.imagine("a fox", who())
    assert role.value.params["roles"] == f"<@&{ROLE}>"
    assert sim.count("/submit/imagine") == 0
    # A thread of an allowed channel is allowed; admins may start jobs anywhere in allowed guilds.
    await jobs.imagine("a fox", who(channel_id=555, parent_channel_id=CHANNEL, role_ids=frozenset({ROLE})))
    await jobs.imagine("a fox", who(ADMIN, channel_id=999))
    assert sim.count("/submit/imagine") == 2


async def test_only_the_owner_or_an_admin_presses_buttons(harness, sim):
    _, jobs, view = await harness(access={"admin_user_ids": [ADMIN]})
    grid = await grid_of(jobs, view, sim)
    with pytest.raises(NotJobOwner) as refused:
        await jobs.change(grid.task_id, Action.UPSCALE, 1, who(OTHER))
    assert refused.value.params["owner_id"] == OWNER
    await jobs.change(grid.task_id, Action.UPSCALE, 1, who(ADMIN))
    await jobs.change(grid.task_id, Action.UPSCALE, 2, who(OWNER))
    assert sim.count("/submit/change") == 2


async def test_anyone_may_press_when_configured(harness, sim):
    _, jobs, view = await harness(access={"buttons": "anyone"})
    grid = await grid_of(jobs, view, sim)
    job = await jobs.change(grid.task_id, Action.VARIATION, 4, who(OTHER))
    assert job.owner_id == OTHER


async def test_task_from_another_guild_is_unknown_here(harness, sim):
    _, jobs, view = await harness(access={"buttons": "anyone"})
    grid = await grid_of(jobs, view, sim)
    with pytest.raises(JobNotFound):
        await jobs.change(grid.task_id, Action.UPSCALE, 1, who(guild_id=GUILD + 1))
    assert sim.count("/submit/change") == 0


async def test_bad_prompts_are_refused_before_the_proxy(harness, sim):
    _, jobs, _ = await harness(access={"banned_words": ["Gore"]})
    with pytest.raises(BannedWord) as banned:
        await jobs.imagine("so much GORE here", who())
    assert banned.value.params["word"] == "Gore"
    with pytest.raises(BadParameter) as bad:
        await jobs.imagine("a fox --ar 3", who())
    assert bad.value.params["parameter"] == "--ar"
    with pytest.raises(PromptTooLong):
        await jobs.imagine("fox " * 2000, who())
    assert sim.count("/submit/imagine") == 0
    assert await jobs.store.unfinished_jobs() == []


# --- limits ---------------------------------------------------------------------------------------


async def test_running_limit_per_member(harness, sim):
    _, jobs, view = await harness(limits={"max_running_per_user": 2}, access={"admin_user_ids": [ADMIN]})
    first = await jobs.imagine("one", who())
    await jobs.imagine("two", who())
    with pytest.raises(TooManyRunning) as refused:
        await jobs.imagine("three", who())
    assert refused.value.params["limit"] == 2
    await jobs.imagine("someone else's", who(OTHER))  # per member
    await jobs.imagine("admin", who(ADMIN))
    await jobs.imagine("admin again", who(ADMIN))
    await jobs.imagine("and again", who(ADMIN))  # admins have no limit
    sim.succeed(first.task_id)
    await view.wait_for(lambda: view.last(first.task_id).display.phase is Phase.DONE)
    await jobs.imagine("three, now", who())


async def test_concurrent_submits_count_against_the_limit(harness, sim):
    _, jobs, _ = await harness(limits={"max_running_per_user": 1})
    results = await asyncio.gather(*(jobs.imagine(f"fox {n}", who()) for n in range(3)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, TooManyRunning) for r in results if isinstance(r, Exception))
    assert sim.count("/submit/imagine") == 1


async def test_daily_limit_resets_at_utc_midnight(harness, sim):
    h, jobs, view = await harness(limits={"max_jobs_per_user_per_day": 2})
    h.now = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600  # 01:00 UTC
    for n in range(2):
        job = await jobs.imagine(f"fox {n}", who())
        sim.succeed(job.task_id)
    with pytest.raises(DailyLimitReached) as refused:
        await jobs.imagine("one too many", who())
    assert refused.value.params["limit"] == 2
    h.now += 23 * 3600  # the next day
    await jobs.imagine("a new day", who())


# --- one job per button -------------------------------------------------------------------------------


async def test_a_button_submits_once(harness, sim):
    _, jobs, view = await harness()
    grid = await grid_of(jobs, view, sim)
    first = await jobs.change(grid.task_id, Action.UPSCALE, 3, who())
    with pytest.raises(ButtonAlreadyUsed) as again:
        await jobs.change(grid.task_id, Action.UPSCALE, 3, who())
    assert again.value.params["link"].endswith(f"/{CHANNEL}/{view.last(first.task_id).message_id}")
    assert sim.count("/submit/change") == 1


async def test_two_quick_presses_submit_once(harness, sim):
    _, jobs, view = await harness(access={"buttons": "anyone"})
    grid = await grid_of(jobs, view, sim)
    sim.fail_next("/submit/change", "delay:0.2")  # the first press is still waiting for the proxy
    results = await asyncio.gather(
        jobs.change(grid.task_id, Action.REROLL, 0, who()),
        jobs.change(grid.task_id, Action.REROLL, 0, who(OTHER)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ButtonBusy) for r in results) == 1
    assert sim.count("/submit/change") == 1


# --- crash safety ---------------------------------------------------------------------------------


async def test_task_accepted_before_a_crash_is_recovered(harness, sim):
    """The bot died after the proxy accepted the submit but before it stored the answer."""
    h, jobs, _ = await harness()
    await h.stop()
    nonce = "mjbot:crashed-submit"
    await h.store.open()
    await h.store.insert_submission(Submission(nonce, "IMAGINE", "a fox", OWNER, GUILD, CHANNEL, None, None, h.now))
    await h.store.close()
    task = sim.add_task("a fox", state=nonce)
    sim.advance(task.id)
    h.now += 5
    jobs, view = await h.start()
    await view.wait_for(lambda: view.last(task.id) is not None)
    assert view.last(task.id).display.phase is Phase.RUNNING
    job = await jobs.store.get_job(task.id)
    assert (job.owner_id, job.channel_id, job.prompt) == (OWNER, CHANNEL, "a fox")
    assert await jobs.store.submissions(before=h.now + 100) == []
    sim.succeed(task.id)
    await view.wait_for(lambda: view.last(task.id).display.phase is Phase.DONE)


async def test_submission_the_proxy_never_saw_is_dropped(harness, sim):
    h, _, _ = await harness()
    await h.stop()
    await h.store.open()
    await h.store.insert_submission(
        Submission("mjbot:never", "IMAGINE", "a fox", OWNER, GUILD, CHANNEL, None, None, h.now)
    )
    await h.store.close()
    h.now += 5
    jobs, view = await h.start()
    await jobs.wait_ticks(2)
    assert await jobs.store.submissions(before=h.now + 100) == [] and view.shown == []


async def test_timed_out_submit_that_the_proxy_accepted_appears_later(harness, sim):
    h, jobs, view = await harness()
    sim.fail_next("/submit/imagine", "delay:2.5")  # longer than the client's 2 s timeout
    with pytest.raises(ProxyTimeout):
        await jobs.imagine("a slow fox", who())
    await sim.wait_for(lambda: any(t.prompt == "a slow fox" for t in sim.tasks.values()), timeout=5)
    task = next(t for t in sim.tasks.values() if t.prompt == "a slow fox")
    h.now += 60  # past the proxy timeout and the grace period
    await view.wait_for(lambda: view.last(task.id) is not None)
    assert (await jobs.store.get_job(task.id)).owner_id == OWNER


async def test_message_posted_before_a_lost_answer_is_not_posted_twice(harness, sim):
    _, jobs, view = await harness()
    view.lose_next_answer = True
    job = await jobs.imagine("a fox", who())
    assert (await jobs.store.get_job(job.task_id)).message_id is None
    sim.advance(job.task_id)
    await view.wait_for(lambda: view.last(job.task_id) is not None)
    assert len(view.posted) == 1  # the first message was found and adopted, not posted again
    assert view.last(job.task_id).message_id == next(iter(view.posted))
    stored = await jobs.store.get_job(job.task_id)
    assert stored.message_id == next(iter(view.posted))


async def test_store_keeps_one_job_per_button(harness, sim):
    _, jobs, view = await harness()
    grid = await grid_of(jobs, view, sim)
    await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    child = (await jobs.store.child_jobs(grid.task_id))[0]

    with pytest.raises(Conflict):
        await jobs.store.insert_job(child.with_changes(task_id="another"))
    assert (await jobs.store.get_job(grid.task_id)).status is Status.SUCCESS


# --- servers that speak /submit/action ------------------------------------------------------------


@pytest.fixture
async def on_trueai(tmp_path):
    """A service in front of a trueai flavoured simulator: (the simulator, the service, its view)."""
    async with ProxySim(secret="sim-secret-7f3a9c", flavour="trueai") as trueai:
        h = Harness(trueai, tmp_path / "trueai.sqlite3")
        jobs, view = await h.start()
        try:
            yield trueai, jobs, view
        finally:
            await h.stop()


async def test_auto_api_learns_that_the_server_has_no_change_endpoint(on_trueai):
    trueai, jobs, view = on_trueai
    # A grid from before the server listed buttons (or its four images): only /submit/change could
    # press U1.
    grid = await jobs.imagine("a fox", who())
    trueai.succeed(grid.task_id)
    await view.wait_for(lambda: view.last(grid.task_id).display.phase is Phase.DONE)
    bare = (await jobs.store.get_job(grid.task_id)).with_changes(buttons=(), grid_images=())
    await jobs.store.update_job(bare, ["buttons", "grid_images"])
    with pytest.raises(ProxyEndpointMissing):
        await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    assert trueai.count("/submit/change") == 1
    assert await jobs.store.meta_value("proxy_api", lambda: "") == "action"  # remembered
    with pytest.raises(ProxyEndpointMissing):
        await jobs.change(grid.task_id, Action.UPSCALE, 2, who())
    assert trueai.count("/submit/change") == 1  # not asked again
    assert await jobs.store.submissions(before=float("inf")) == []  # nothing left half-done


async def test_an_upscale_the_server_cannot_make_is_the_grids_own_image(served):
    """trueai's imageUrls (Setting.EnableFillOfficialCdn): the grid's four images, each alone. A grid
    without buttons cannot be upscaled through /submit/action; U2 then posts the grid's image 2, once."""
    trueai, jobs, view, _ = await served("trueai", image_urls=True)
    grid = await jobs.imagine("a fox", who())
    trueai.succeed(grid.task_id)
    await view.wait_for(lambda: view.last(grid.task_id).display.phase is Phase.DONE)
    stored = await jobs.store.get_job(grid.task_id)
    assert stored.grid_images == tuple(trueai.grid_image_url(grid.task_id, i) for i in range(4))
    await jobs.store.update_job(stored.with_changes(buttons=()), ["buttons"])
    split = await jobs.change(grid.task_id, Action.UPSCALE, 2, who())
    assert (split.action, split.parent_index, split.status) == (Action.UPSCALE, 2, Status.SUCCESS)
    shown = await view.wait_for(lambda: (s := view.last(split.task_id)) and s.display.phase is Phase.DONE and s)
    assert shown.image.data == trueai.grid_image_bytes(grid.task_id, 1) and shown.reply_to is not None
    with pytest.raises(ButtonAlreadyUsed):
        await jobs.change(grid.task_id, Action.UPSCALE, 2, who())
    assert trueai.count("/submit/action") == 0 and await jobs.store.submissions(before=float("inf")) == []
    refreshed = await view.wait_for(lambda: (s := view.last(grid.task_id)) and s.display.used_buttons and s)
    assert ("UPSCALE", 2) in refreshed.display.used_buttons


async def test_own_buttons_are_sent_as_actions_when_the_task_lists_buttons(on_trueai):
    trueai, jobs, view = on_trueai
    grid = await jobs.imagine("a fox", who())
    trueai.succeed(grid.task_id)
    await view.wait_for(lambda: view.last(grid.task_id).display.phase is Phase.DONE)
    stored = await jobs.store.get_job(grid.task_id)
    assert [b.label or b.emoji for b in stored.buttons][:5] == ["U1", "U2", "U3", "U4", "🔄"]
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 3, who())
    assert "::upsample::3::" in trueai.last_request("/submit/action").json["customId"]
    assert (upscale.action, upscale.parent_index) == (Action.UPSCALE, 3)
    with pytest.raises(ButtonAlreadyUsed):  # the same button, pressed as the server's own
        await jobs.press(grid.task_id, 2, who())


# --- stopping -------------------------------------------------------------------------------------


async def test_a_press_under_way_finishes_before_the_service_stops(harness, sim):
    """SIGTERM during a click: the click completes (its job stored and posted) before the database
    closes, and a click after that is told the bot is restarting."""
    h, jobs, view = await harness()
    grid = await grid_of(jobs, view, sim)
    sim.fail_next("/submit/change", "delay:0.5")
    press = asyncio.create_task(jobs.change(grid.task_id, Action.UPSCALE, 1, who()))
    await sim.wait_for(lambda: sim.count("/submit/change") == 1)
    await h.stop()  # the service, then the proxy client and the database
    child = await press
    assert child.parent_task_id == grid.task_id and child.message_id is not None
    with pytest.raises(BotRestarting):
        await jobs.change(grid.task_id, Action.UPSCALE, 2, who())
