"""The commands members reach for, through the jobs service against the simulator's servers: /shorten,
/describe by link, cancel, the seed, Remix and a per-job speed (trueai Controllers/SubmitController.cs,
Controllers/TaskController.cs; novicezk has none of them)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core.errors import (
    BadImageLink,
    CancelRefused,
    CancelUnsupported,
    DescribeNeedsOneImage,
    JobNotReady,
    LinkUnsupported,
    NotJobOwner,
    SeedUnsupported,
    ShortenUnsupported,
    SubmitRefused,
)
from bot.core.i18n import error_text
from bot.core.models import Action, ImageFile, Phase, Status, offered_prompts
from bot.sandbox.proxy_sim import shortened_prompts
from tests.service_harness import OTHER, grid_of, who


async def done(sim, view, task_id):
    sim.succeed(task_id)
    return await view.wait_for(lambda: (s := view.last(task_id)) and s.display.phase is Phase.DONE and s)


async def test_shorten_offers_each_shorter_prompt_to_imagine(served):
    sim, jobs, view, _ = await served("trueai")
    prompt = "a very beautiful picture of a red fox in the snow --ar 3:2"
    job = await jobs.shorten(prompt, who())
    assert job.action is Action.SHORTEN and sim.last_request("/submit/shorten").json["prompt"] == prompt
    await done(sim, view, job.task_id)
    stored = await jobs.store.get_job(job.task_id)
    assert offered_prompts(stored) == shortened_prompts(prompt)
    second = await jobs.imagine_described(job.task_id, 2, who(OTHER))
    assert sim.last_request("/submit/imagine").json["prompt"] == shortened_prompts(prompt)[1] == second.prompt


async def test_novicezk_has_no_shorten_cancel_seed_or_link(served):
    sim, jobs, view, _ = await served("novicezk")
    with pytest.raises(ShortenUnsupported) as caught:
        await jobs.shorten("a fox", who())
    assert "can't shorten prompts" in error_text(caught.value)
    with pytest.raises(LinkUnsupported):
        await jobs.describe(None, who(), link="https://example.com/fox.png")
    grid = await grid_of(jobs, view, sim)
    assert not jobs.controls.can_cancel  # novicezk's tasks do not say botType: no ⏹
    with pytest.raises(SeedUnsupported):
        await jobs.controls.seed(grid.task_id, who())
    running = await jobs.imagine("still running", who())
    with pytest.raises(CancelUnsupported):
        await jobs.controls.cancel(running.task_id, who())


async def test_describe_by_link(served):
    sim, jobs, view, _ = await served("trueai")
    await jobs.describe(None, who(), link="https://cdn.example.com/fox.png")
    body = sim.last_request("/submit/describe").json
    assert body["link"] == "https://cdn.example.com/fox.png" and "base64" not in body
    for image, link, error in [
        (None, "ftp://example.com/x.png", BadImageLink),
        (None, "not a link", BadImageLink),
        (None, None, DescribeNeedsOneImage),
        (ImageFile("x.png", b"\x89PNG", "image/png"), "https://example.com/x.png", DescribeNeedsOneImage),
    ]:
        with pytest.raises(error):
            await jobs.describe(image, who(), link=link)
    assert sim.count("/submit/describe") == 1


async def test_cancel_on_trueai(served):
    sim, jobs, view, _ = await served("trueai")
    job = await jobs.imagine("a slow fox", who())
    sim.advance(job.task_id)
    await view.wait_for(lambda: jobs.controls.can_cancel, timeout=5)  # learned from botType
    with pytest.raises(NotJobOwner):
        await jobs.controls.cancel(job.task_id, who(OTHER))
    await jobs.controls.cancel(job.task_id, who())
    failed = await view.wait_for(lambda: (s := view.last(job.task_id)) and s.display.phase is Phase.FAILED and s)
    assert "取消任务" in failed.display.fail_reason
    assert (await jobs.store.get_job(job.task_id)).status is Status.FAILURE
    with pytest.raises(JobNotReady):  # finished: nothing to cancel
        await jobs.controls.cancel(job.task_id, who())


async def test_seed_on_trueai(served):
    sim, jobs, view, _ = await served("trueai")
    grid = await grid_of(jobs, view, sim)
    assert await jobs.controls.seed(grid.task_id, who()) == sim.tasks[grid.task_id].seed
    running = await jobs.imagine("not yet", who())
    with pytest.raises(JobNotReady):
        await jobs.controls.seed(running.task_id, who())


async def test_remix_asks_for_the_prompt_first(served):
    sim, jobs, view, _ = await served("trueai", remix=True)
    grid = await grid_of(jobs, view, sim)
    await jobs.members.set_setting(who(), "remix", "on")
    varied = await jobs.change(grid.task_id, Action.VARIATION, 2, who())
    assert sim.last_request("/submit/action").json["enableRemix"] is True
    await view.wait_for(lambda: (s := view.last(varied.task_id)) and s.display.phase is Phase.NEEDS_PROMPT)
    await jobs.give_prompt(varied.task_id, "a red fox at night", who())
    assert sim.last_request("/submit/modal").json["prompt"] == "a red fox at night"
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 1, who())  # an upscale never waits
    assert "enableRemix" not in sim.last_request("/submit/action").json and upscale.status is not Status.MODAL


async def test_remix_on_an_account_without_it_is_refused_in_the_servers_words(served):
    sim, jobs, view, _ = await served("trueai", remix=False)
    grid = await grid_of(jobs, view, sim)
    await jobs.members.set_setting(who(), "remix", "on")
    with pytest.raises(SubmitRefused) as caught:
        await jobs.change(grid.task_id, Action.VARIATION, 1, who())
    assert "remix" in error_text(caught.value)


async def test_a_members_speed_goes_through_trueais_mode_path(served):
    sim, jobs, view, h = await served("trueai")
    await h.stop()
    h.settings.proxy.speeds = ["relax", "turbo"]
    jobs, view = await h.start()
    await jobs.members.set_setting(who(), "speed", "relax")
    await jobs.imagine("a calm fox", who())
    assert sim.last_request("/submit/imagine").prefix == "/mj-relax/mj"
    await jobs.members.set_setting(who(), "speed", "")
    await jobs.imagine("a quick fox", who())
    assert sim.last_request("/submit/imagine").prefix == "/mj"
    assert replace(await jobs.members.preferences(who()), speed="") == await jobs.members.preferences(who())


async def test_a_cancel_the_server_refuses_is_said_not_pretended(served):
    """trueai TaskController.cs: only an admin's token may cancel (400 演示模式，禁止操作)."""
    sim, jobs, view, _ = await served("trueai", admin=False)
    job = await jobs.imagine("a slow fox", who())
    with pytest.raises(CancelRefused) as caught:
        await jobs.controls.cancel(job.task_id, who())
    assert "would not cancel" in error_text(caught.value)
    assert sim.tasks[job.task_id].status != Status.FAILURE
