"""Videos and results too large for Discord, through the jobs service against the simulator's trueai,
new-api and novicezk flavours (trueai Controllers/SubmitController.cs Video, Models/TaskInfo.cs)."""

from __future__ import annotations

import io
import math

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from bot.core.errors import (
    AnimateNeedsOneImage,
    BadVideoBatch,
    ButtonNotRelayed,
    JobNotReady,
    NotAnImageJob,
    NotEnoughCredits,
    NotJobOwner,
    VideoUnsupported,
)
from bot.core.i18n import error_text
from bot.core.models import Action, ImageFile, Phase, Status, Submission
from bot.jobs import AnimateRequest
from tests.conftest import PROXY_SECRET
from tests.service_harness import CHANNEL, GUILD, OTHER, OWNER, grid_of, who


def png(side: int = 64, colour=(200, 30, 30)) -> ImageFile:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "PNG")
    return ImageFile("start.png", out.getvalue(), "image/png")


async def finished(sim, view, task_id: str):
    sim.succeed(task_id)
    if sim.flavour == "newapi":
        sim.gateway_poll()  # new-api sees the upstream's change on its own poll
    return await view.wait_for(lambda: (s := view.last(task_id)) and s.display.phase is Phase.DONE and s)


async def upscale_of(sim, jobs, view):
    grid = await grid_of(jobs, view, sim)
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    await finished(sim, view, upscale.task_id)
    return await jobs.store.get_job(upscale.task_id)


def button(job, text: str) -> int:
    return next(n for n, b in enumerate(job.buttons) if text in b.custom_id or text == b.label)


def clips_of(shown) -> list[bytes]:
    assert all(f.content_type == "video/mp4" and f.filename.endswith(".mp4") for f in shown.files)
    return [f.data for f in shown.files]


async def test_animate_then_u2_then_extend_posts_each_batch_as_mp4s(served):
    sim, jobs, view, _ = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    batch = await jobs.press(upscale.task_id, button(upscale, "animate_high"), who())
    assert batch.action is Action.VIDEO
    shown = await finished(sim, view, batch.task_id)
    assert clips_of(shown) == [sim.video_bytes(batch.task_id, i) for i in range(4)]
    stored = await jobs.store.get_job(batch.task_id)
    assert len(stored.videos) == 4 and stored.status is Status.SUCCESS

    one = await jobs.press(batch.task_id, button(stored, "video_virtual_upscale::2"), who())
    assert (one.action, one.parent_index) == (Action.VIDEO, 2)
    shown = await finished(sim, view, one.task_id)
    assert len(clips_of(shown)) == 1 and view.of(one.task_id)[0].reply_to == view.last(batch.task_id).message_id

    single = await jobs.store.get_job(one.task_id)
    extend = await jobs.press(one.task_id, button(single, "Extend (High motion)"), who())
    assert extend.action is Action.VIDEO
    assert len(clips_of(await finished(sim, view, extend.task_id))) >= 1


async def test_animate_command_sends_the_images_and_options(served):
    sim, jobs, view, _ = await served("trueai")
    request = AnimateRequest(image=png(), prompt="waves rolling", motion="high", end_image=png(colour=(0, 0, 200)))
    request = AnimateRequest(**{**request.__dict__, "loop": True, "batch": 2})
    job = await jobs.animate(request, who())
    body = sim.last_request("/submit/video").json
    assert body["image"] == png().as_data_url() and body["endImage"].startswith("data:image/png;base64,")
    assert (body["motion"], body["batchSize"], body["loop"], body["prompt"]) == ("high", 2, True, "waves rolling")
    assert len(clips_of(await finished(sim, view, job.task_id))) == 2


async def test_animate_a_finished_job_of_ones_own(served):
    sim, jobs, view, _ = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    sim.cut_media(upscale.task_id, times=100)  # the proxy's link is gone: its message's file is not
    job = await jobs.animate(AnimateRequest(job_id=upscale.task_id, batch=1), who())
    sent = sim.last_request("/submit/video").json
    # The proxy's own link may not reach Midjourney: the bytes, from the message that shows them.
    assert sent["image"] == view.last(upscale.task_id).image.as_data_url()
    assert sent["prompt"] == "a red fox"  # no prompt given: the image's own words
    assert len(clips_of(await finished(sim, view, job.task_id))) == 1


async def test_animate_a_30_mb_upscale_sends_it_fitted_to_what_the_server_takes(served):
    """trueai takes at most 30,000,000 bytes of request (Kestrel); base64 adds a third."""
    sim, jobs, view, _ = await served("trueai", final_image_pixels=(4096, 2304))
    upscale = await upscale_of(sim, jobs, view)
    await jobs.animate(AnimateRequest(job_id=upscale.task_id), who())
    sent = sim.last_request("/submit/video").json["image"]
    assert len(sim.image_bytes(upscale.task_id)) > 25 * 1024 * 1024 and len(sent) < 14 * 1024 * 1024


async def test_animate_refuses_bad_requests_before_the_proxy_hears_of_them(served):
    sim, jobs, view, _ = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    running = await jobs.imagine("still going", who())
    cases = [
        (AnimateRequest(image=png(), batch=3), BadVideoBatch),
        (AnimateRequest(), AnimateNeedsOneImage),
        (AnimateRequest(image=png(), job_id=upscale.task_id), AnimateNeedsOneImage),
        (AnimateRequest(job_id=running.task_id), JobNotReady),
    ]
    for request, error in cases:
        with pytest.raises(error) as caught:
            await jobs.animate(request, who())
        assert error_text(caught.value)  # a message of its own for the member
    with pytest.raises(NotJobOwner):
        await jobs.animate(AnimateRequest(job_id=upscale.task_id), who(OTHER))
    batch = await jobs.press(upscale.task_id, button(upscale, "animate_low"), who())
    await finished(sim, view, batch.task_id)
    for not_one_image in (batch.task_id, upscale.parent_task_id):  # a video batch, a grid
        with pytest.raises(NotAnImageJob):
            await jobs.animate(AnimateRequest(job_id=not_one_image), who())
    assert sim.count("/submit/video") == 0


async def test_novicezk_cannot_make_videos(served):
    sim, jobs, view, h = await served("novicezk")
    with pytest.raises(VideoUnsupported) as caught:
        await jobs.animate(AnimateRequest(image=png()), who())
    assert "can't make videos" in error_text(caught.value)
    assert await h.store.unfinished_jobs() == [] and not await h.store.submissions(before=h.now + 1)


@pytest.mark.parametrize("flavour", ["trueai", "novicezk"])
async def test_a_video_costs_mj_video_and_a_server_without_video_refunds_it(served, flavour):
    credits = {"enabled": True, "starting_balance": 1, "prices": {"mj_video": 0.8}}
    sim, jobs, view, _ = await served(flavour, credits=credits)
    if flavour == "novicezk":
        with pytest.raises(VideoUnsupported):
            await jobs.animate(AnimateRequest(image=png()), who())
        account = await jobs.account(who())
        assert account.balance == 10_000 and [e.kind for e in account.entries] == ["refund", "hold", "grant"]
        return
    await jobs.animate(AnimateRequest(image=png()), who())
    assert (await jobs.account(who())).balance == 2_000  # 1 - 0.8
    with pytest.raises(NotEnoughCredits):
        await jobs.animate(AnimateRequest(image=png()), who())
    assert sim.count("/submit/video") == 1


async def test_trueai_with_video_off_says_so(served):
    sim, jobs, view, _ = await served("trueai", video=False)
    with pytest.raises(VideoUnsupported):
        await jobs.animate(AnimateRequest(image=png()), who())


async def test_new_api_relays_animate_command(served):
    sim, jobs, view, _ = await served("newapi", upstream="trueai")
    job = await jobs.animate(AnimateRequest(image=png(), batch=4), who())
    assert len(clips_of(await finished(sim, view, job.task_id))) == 4


async def test_animate_button_on_new_api_goes_through_its_video_submit(served):
    """new-api middleware/distributor.go cannot turn animate's customId into an action (400
    unknown_action); its /submit/video makes the same video from the upscale's image."""
    sim, jobs, view, _ = await served("newapi", upstream="trueai")
    grid = await jobs.imagine("a red fox --ar 3:2", who())
    await finished(sim, view, grid.task_id)
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 1, who())
    await finished(sim, view, upscale.task_id)
    stored = await jobs.store.get_job(upscale.task_id)
    batch = await jobs.press(upscale.task_id, button(stored, "animate_low"), who())
    sent = sim.last_request("/submit/video").json
    assert (sent["motion"], sent["prompt"]) == ("low", "a red fox") and sent["image"].startswith("data:image/")
    assert batch.action is Action.VIDEO and len(clips_of(await finished(sim, view, batch.task_id))) == 4
    video_u1 = button(await jobs.store.get_job(batch.task_id), "video_virtual_upscale::1")
    with pytest.raises(ButtonNotRelayed) as caught:  # no other way to it on new-api
        await jobs.press(batch.task_id, video_u1, who())
    assert "gateway can't press that button" in error_text(caught.value)


async def test_a_video_download_cut_halfway_is_retried_and_never_half_posted(served):
    sim, jobs, view, _ = await served("trueai")
    job = await jobs.animate(AnimateRequest(image=png()), who())
    sim.cut_media(job.task_id, times=2)
    shown = await finished(sim, view, job.task_id)
    assert len(clips_of(shown)) == 4
    assert all(len(s.files) in (0, 4) for s in view.of(job.task_id))


async def test_a_video_that_never_downloads_says_so(served):
    sim, jobs, view, _ = await served("trueai")
    job = await jobs.animate(AnimateRequest(image=png()), who())
    sim.cut_media(job.task_id, times=1000)
    shown = await finished(sim, view, job.task_id)
    assert shown.files == () and shown.note.kind == "download_failed"


async def test_a_video_over_the_limit_posts_its_first_frame(served):
    sim, jobs, view, _ = await served("trueai")
    view.limit = 300  # the simulator's clips are 320 bytes each
    job = await jobs.animate(AnimateRequest(image=png()), who())
    shown = await finished(sim, view, job.task_id)
    (frame,) = shown.files  # the first clip's thumbnail: its first frame
    assert shown.note.kind == "video_too_large" and frame.content_type.startswith("image/")


async def test_a_video_over_the_limit_on_a_lasting_host_is_linked(served):
    sim, jobs, view, h = await served("trueai")
    await h.stop()
    h.settings.proxy.lasting_media_hosts = ["127.0.0.1"]
    jobs, view = await h.start()
    view.limit = 300
    job = await jobs.animate(AnimateRequest(image=png()), who())
    shown = await finished(sim, view, job.task_id)
    assert shown.files == () and shown.note.kind == "linked"
    assert list(shown.note.links) == [sim.video_url(job.task_id, i) for i in range(4)]


async def test_a_video_task_found_after_a_crash_is_posted(served):
    """A video the bot submitted just before a crash, found again by its nonce."""
    sim, jobs, view, h = await served("trueai")
    upscale = await upscale_of(sim, jobs, view)
    animate = next(b for b in upscale.buttons if "animate" in b.custom_id)
    await h.stop()
    await h.store.open()
    nonce = "mjbot:video-before-a-crash"
    await h.store.insert_submission(Submission(nonce, "VIDEO", "", OWNER, GUILD, CHANNEL, None, None, h.now))
    await h.store.close()
    async with httpx.AsyncClient(base_url=sim.base_url, headers={"Authorization": PROXY_SECRET}) as client:
        body = {"taskId": upscale.task_id, "customId": animate.custom_id, "state": nonce}
        task_id = (await client.post("/submit/action", json=body)).json()["result"]
    sim.succeed(task_id)
    h.now += 60  # past the proxy timeout and the grace: recovery looks for it
    jobs, view = await h.start()
    shown = await view.wait_for(lambda: (s := view.last(task_id)) and s.display.phase is Phase.DONE and s)
    assert len(clips_of(shown)) == 4


def psnr(a: Image.Image, b: Image.Image) -> float:
    squared = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).rms
    mse = sum(value * value for value in squared) / len(squared)
    return float("inf") if mse == 0 else 10 * math.log10(255 * 255 / mse)


async def test_a_30_mb_upscale_is_re_encoded_to_fit_10_mb(served):
    sim, jobs, view, _ = await served("trueai", final_image_pixels=(4096, 2304))
    grid = await grid_of(jobs, view, sim)
    upscale = await jobs.change(grid.task_id, Action.UPSCALE, 2, who())
    sim.succeed(upscale.task_id)
    shown = await view.wait_for(
        lambda: (s := view.last(upscale.task_id)) and s.display.phase is Phase.DONE and s, timeout=60
    )
    original = sim.image_bytes(upscale.task_id)
    assert len(original) > 25 * 1024 * 1024
    (file,) = shown.files
    assert len(file.data) <= 10 * 1024 * 1024 and shown.note.kind == "reencoded"
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(file.data))
    assert after.size == before.size and psnr(before, after) > 40
    assert shown.note.links == ()  # the proxy's link expires: not offered
