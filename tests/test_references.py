"""/imagine with several images and with images for --sref/--cref/--oref, through the jobs service
against the simulator's servers (trueai Controllers/SubmitController.cs ImagineDiscordImages,
Services/TaskService.cs SubmitImagine; relayed by new-api; absent on novicezk)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.errors import ReferenceTwice, ReferenceUploadUnsupported, TooManyImages
from bot.core.i18n import error_text
from bot.core.models import ImageFile
from tests.service_harness import who


def png(colour: tuple[int, int, int]) -> ImageFile:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return ImageFile("ref.png", out.getvalue(), "image/png")


RED, GREEN, BLUE = png((200, 0, 0)), png((0, 200, 0)), png((0, 0, 200))


@pytest.mark.parametrize("flavour", ["novicezk", "trueai"])
async def test_three_images_go_with_the_prompt(served, flavour):
    sim, jobs, _, _ = await served(flavour)
    await jobs.imagine("a fox", who(), images=[RED, GREEN, BLUE])
    assert sim.last_request("/submit/imagine").json["base64Array"] == [i.as_data_url() for i in (RED, GREEN, BLUE)]
    with pytest.raises(TooManyImages) as caught:
        await jobs.imagine("a fox", who(), images=[RED, GREEN, BLUE, RED])
    assert "at most 3 images" in error_text(caught.value) and sim.count("/submit/imagine") == 1


@pytest.mark.parametrize(("flavour", "options"), [("trueai", {}), ("newapi", {"upstream": "trueai"})])
async def test_reference_images_are_uploaded_and_linked_in_the_prompt(served, flavour, options):
    sim, jobs, _, h = await served(flavour, **options)
    job = await jobs.imagine("a fox --ar 16:9", who(), references={"sref": RED, "cref": GREEN})
    (sref_url, stored_red, _), (cref_url, stored_green, _) = sim.uploads[:2]
    assert (stored_red, stored_green) == (RED.data, GREEN.data)
    sent = sim.last_request("/submit/imagine").json["prompt"]
    assert sent == job.prompt == f"a fox --ar 16:9 --sref {sref_url} --cref {cref_url}"
    assert (await h.store.get_job(job.task_id)).prompt == sent  # what the message shows


async def test_novicezk_cannot_take_reference_images(served):
    sim, jobs, _, h = await served("novicezk")
    with pytest.raises(ReferenceUploadUnsupported) as caught:
        await jobs.imagine("a fox", who(), references={"oref": BLUE})
    assert "--oref" in error_text(caught.value) and "image link" in error_text(caught.value)
    assert sim.count("/submit/imagine") == 0 and await h.store.unfinished_jobs() == []


async def test_a_reference_both_written_and_attached_is_refused(served):
    sim, jobs, _, _ = await served("trueai")
    with pytest.raises(ReferenceTwice) as caught:
        await jobs.imagine("a fox --sref https://example.com/style.png", who(), references={"sref": RED})
    assert "--sref" in error_text(caught.value)
    assert sim.uploads == [] and sim.count("/submit/imagine") == 0
