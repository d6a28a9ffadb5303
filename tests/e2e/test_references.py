"""/imagine with several images and --sref/--cref/--oref images, end to end: the bot process against
the Discord double and the simulator's trueai (which uploads them) and novicezk (which cannot)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.proxy_sim import ProxySim
from tests.conftest import PROXY_SECRET
from tests.e2e.harness import answer_to, public_messages, wait_public


def png() -> tuple[str, bytes, str]:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), (90, 40, 160)).save(out, "PNG")
    return "style.png", out.getvalue(), "image/png"


@pytest.fixture(params=["trueai", "novicezk"])
async def sim(request):
    async with ProxySim(secret=PROXY_SECRET, flavour=request.param) as server:
        yield server


async def test_an_sref_image(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(auth="authorization" if sim.flavour == "trueai" else "mj-api-secret")
    await start_bot()
    asked = await dd.slash("imagine", {"prompt": "a quiet harbour"}, attachments={"sref": png()})
    if sim.flavour == "novicezk":
        assert "can't take attached images for --sref" in await answer_to(dd, asked)
        assert public_messages(dd) == [] and sim.count("/submit/imagine") == 0
        return
    message = await wait_public(dd, 1)
    (url, data, _), *_ = sim.uploads
    assert data == png()[1] and sim.last_request("/submit/imagine").json["prompt"].endswith(f"--sref {url}")
    assert message.content.startswith("**a quiet harbour --sref ")


async def test_a_second_image_that_is_not_one_is_named(configure, start_bot, dd: DiscordDouble, sim: ProxySim):
    configure(auth="authorization" if sim.flavour == "trueai" else "mj-api-secret")
    await start_bot()
    files = {"image": png(), "image2": ("photo.png", b"GIF89a but not really", "image/png")}
    asked = await dd.slash("imagine", {"prompt": "two pictures"}, attachments=files)
    assert "image2 is not an image" in await answer_to(dd, asked)
    assert sim.count("/submit/imagine") == 0 and public_messages(dd) == []
