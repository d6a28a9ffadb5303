"""Videos and large results end to end: the bot process against the Discord double and the
simulator's trueai, new-api and novicezk (trueai Controllers/SubmitController.cs Video,
Models/TaskInfo.cs; the double enforces Discord's upload limit per boost tier)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.flavours import GatewaySim
from tests.e2e.harness import answer_to, custom_id, public_messages, upscaled, wait_public

MIB = 1024 * 1024


def png_bytes(colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(params=["trueai", "newapi"])
async def sim(request):
    """trueai and new-api (in front of trueai); a test may ask for another flavour, with options,
    through ``@pytest.mark.parametrize("sim", [(flavour, options)], indirect=True)``."""
    flavour, options = (request.param, {}) if isinstance(request.param, str) else request.param
    if flavour == "newapi":
        server = GatewaySim(secret=PROXY_SECRET, flavour="newapi", upstream="trueai", **options)
    else:
        server = ProxySim(secret=PROXY_SECRET, flavour=flavour, **options)
    async with server:
        yield server


def video_task(sim: ProxySim, after: set[str]) -> str:
    return next(t.id for t in sim.tasks.values() if t.action == "VIDEO" and t.id not in after)


async def wait_clips(dd: DiscordDouble, message, count: int):
    await dd.wait_for(
        lambda: (
            len(message.current.attachments) == count
            and all(a.content_type == "video/mp4" for a in message.current.attachments)
        ),
        timeout=15,
        what=f"{count} clips on message {message.id}",
    )
    return message


async def test_animate_then_u2_then_extend(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure()
    await start_bot()
    _, upscale = await upscaled(dd, sim)
    await dd.click(upscale.id, custom_id(upscale, "Animate (High motion)"))
    batch = await wait_public(dd, 3)
    if sim.flavour == "newapi":  # distributor.go cannot convert Animate: the bot used /submit/video
        assert sim.last_request("/submit/video").json["motion"] == "high"
    batch_task = video_task(sim, set())
    sim.succeed(batch_task)
    await wait_clips(dd, batch, 4)
    assert [a.data for a in batch.current.attachments] == [sim.video_bytes(batch_task, i) for i in range(4)]
    assert batch.current.embeds == [] and "Videos by" in batch.content
    if sim.flavour == "newapi":  # nor a batch's U1-U4, which nothing else can do: the member is told
        refused = await dd.click(batch.id, custom_id(batch, "U2"))
        assert "gateway can't press that button" in await answer_to(dd, refused)
        return

    await dd.click(batch.id, custom_id(batch, "U2"))
    one = await wait_public(dd, 4)
    assert one.reply_to == batch.id
    one_task = next(t.id for t in sim.tasks.values() if t.custom_id and "video_virtual_upscale::2" in t.custom_id)
    sim.succeed(one_task)
    await wait_clips(dd, one, 1)
    assert "Video #2" in one.content

    await dd.click(one.id, custom_id(one, "Extend (High motion)"))
    extended = await wait_public(dd, 5)
    sim.succeed(video_task(sim, {batch_task}))
    await dd.wait_for(lambda: extended.current.attachments, what="the extended video")


async def test_animate_command_with_an_end_image(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure()
    await start_bot()
    files = {
        "image": ("start.png", png_bytes(), "image/png"),
        "end_image": ("end.png", png_bytes((0, 0, 0)), "image/png"),
    }
    await dd.slash("animate", {"prompt": "the tide comes in", "batch": 2, "motion": "high"}, attachments=files)
    message = await wait_public(dd, 1)
    body = sim.last_request("/submit/video").json
    assert body["endImage"].startswith("data:image/png;base64,") and body["batchSize"] == 2
    sim.succeed(video_task(sim, set()))
    await wait_clips(dd, message, 2)
    assert message.content.startswith("**the tide comes in**")


@pytest.mark.parametrize("sim", ["trueai"], indirect=True)
async def test_bad_animate_requests_each_get_their_own_answer(configure, start_bot, dd: DiscordDouble, sim):
    configure()
    await start_bot()
    _, bob = dd.members
    up_task, _ = await upscaled(dd, sim)
    before = len(public_messages(dd))
    start = {"image": ("start.png", png_bytes(), "image/png")}
    cases = [
        ({}, {**start, "end_image": ("notes.txt", b"just words", "text/plain")}, None, "end_image is not an image"),
        ({}, {**start, "end_image": ("fake.png", b"\x00not a png at all", "image/png")}, None, "end_image is not"),
        ({"batch": 3}, start, None, "1, 2 or 4 videos"),
        ({}, {}, None, "an image or a job id"),
        ({"job": up_task}, {}, bob, "your own images"),  # someone else's job
    ]
    for options, attachments, user, expected in cases:
        answer = await answer_to(dd, await dd.slash("animate", options, attachments=attachments, user=user))
        assert expected in answer, answer
    running = await dd.slash("imagine", {"prompt": "still running"})
    await wait_public(dd, before + 1)
    job_id = next(t.id for t in sim.tasks.values() if t.prompt == "still running")
    assert "not finished" in await answer_to(dd, await dd.slash("animate", {"job": job_id}))
    assert running and sim.count("/submit/video") == 0 and len(public_messages(dd)) == before + 1


@pytest.mark.parametrize("sim", ["novicezk", ("trueai", {"video": False})], indirect=True)
async def test_a_server_without_video_says_so(configure, start_bot, dd: DiscordDouble, sim):
    configure()
    await start_bot()
    animate = await dd.slash("animate", {}, attachments={"image": ("start.png", png_bytes(), "image/png")})
    assert "can't make videos" in await answer_to(dd, animate)
    assert public_messages(dd) == []


@pytest.mark.parametrize("sim", [("trueai", {"final_image_pixels": (4096, 2304)})], indirect=True)
async def test_a_large_upscale_fits_each_boost_tier(configure, start_bot, dd: DiscordDouble, sim):
    """A ~28 MB PNG upscale: at tier 0 (10 MiB a file) re-encoded to fit, same pixel size; at tier 2
    (50 MiB) attached as it is."""
    configure()
    await start_bot()
    up_task, upscale = await upscaled(dd, sim)
    (attached,) = upscale.current.attachments
    original = sim.image_bytes(up_task)
    assert len(original) > 25 * MIB and attached.size <= 10 * MIB and attached.content_type != "image/png"
    assert (attached.width, attached.height) == (4096, 2304)
    assert "Re-encoded to fit this server's upload limit" in upscale.content and "MB" in upscale.content

    await dd.set_premium_tier(dd.guild_id, 2)
    grid = public_messages(dd)[0]
    await dd.click(grid.id, custom_id(grid, "U2"))
    second = await wait_public(dd, 3)
    sim.succeed(next(t.id for t in sim.tasks.values() if t.action == "UPSCALE" and t.id != up_task))
    await dd.wait_for(lambda: second.current.attachments, timeout=30, what="the second upscale")
    (whole,) = second.current.attachments
    assert whole.content_type == "image/png" and whole.size > 25 * MIB and "Re-encoded" not in second.content
