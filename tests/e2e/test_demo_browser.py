"""``mjbot demo`` in a real browser: the command as a newcomer runs it (a child process, its own
simulator, double and bot), the page driven in headless Chromium. A job goes from prompt to grid to
upscale; the bot is killed and restarted mid-job and the job finishes on its message; bob cannot
press alice's buttons."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.browser import DESKTOP, browser, needs_chromium, screenshot_dir  # noqa: F401
from tests.e2e.harness import ROOT, free_port

pytestmark = needs_chromium()
READY = re.compile(rb"open (http://127\.0\.0\.1:\d+/)")


@pytest.fixture
async def demo(tmp_path: Path):
    """``mjbot demo`` on a free port, quick steps; yields its page's URL, and stops it with SIGINT
    (Ctrl-C), checking it exits cleanly and removes its folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--port", str(free_port()), "--step-s", "0.5",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen = b""
    try:
        while (found := READY.search(seen)) is None:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            if not line:
                raise AssertionError(f"mjbot demo exited before its page was up:\n{seen.decode(errors='replace')}")
            seen += line
        folder = Path(re.search(rb"log is (\S+)/bot\.log", seen).group(1).decode())
        yield found.group(1).decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            rest = await asyncio.wait_for(process.stdout.read(), 30)
            await process.wait()
            assert process.returncode == 0, (seen + rest).decode(errors="replace")
    assert not folder.exists()  # nothing left behind


async def imagine(page, prompt: str) -> None:
    await page.select_option("#command", "imagine")
    await page.fill("#option-imagine-prompt", prompt)
    await page.click("#send")


def button(page, label: str, prompt: str):
    """The button ``label`` under the newest message that shows ``prompt``."""
    return page.locator("article.message", has_text=prompt).last.locator(f'button[data-label="{label}"]')


async def test_a_newcomer_imagines_upscales_and_survives_a_restart(demo, browser, tmp_path):
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(demo)
    # What a client would not send, and a POST from another site, change nothing.
    answer = await context.request.post(demo + "press", form={"as": "bob", "message": "abc", "custom_id": "x"})
    assert answer.ok and "not on the page any more" in await answer.text()  # a note, after the redirect
    answer = await context.request.post(
        demo + "fault/restart-bot", form={"as": "alice"}, headers={"Origin": "http://evil.example"}, max_redirects=0
    )
    assert answer.status == 403

    await imagine(page, "a lighthouse at dawn <t:99999999999999>")  # a timestamp no calendar has
    await page.wait_for_selector("article.message:has-text('a lighthouse at dawn')", timeout=30_000)
    await page.wait_for_selector("article.message:has-text('a lighthouse at dawn'):has-text('%')", timeout=30_000)
    await button(page, "U2", "a lighthouse at dawn").wait_for(timeout=60_000)  # the grid is done
    await button(page, "U2", "a lighthouse at dawn").click()
    await page.wait_for_selector("article.message:has-text('Image #2') img.result", timeout=60_000)
    await page.screenshot(path=screenshot_dir(tmp_path) / "demo.png", full_page=True)

    # Kill the bot mid-job: the restarted bot finishes it on the same message.
    await imagine(page, "a storm over the sea")
    message = page.locator("article.message", has_text="a storm over the sea").last
    await message.wait_for(timeout=30_000)
    message_id = await message.get_attribute("data-message")
    assert await page.locator(f'#m{message_id} button[data-label="U1"]').count() == 0  # still running
    await page.click("#fault-restart-bot")
    await page.wait_for_selector("#notes:has-text('The bot is back')", timeout=60_000)
    await page.locator(f'#m{message_id} button[data-label="U1"]').wait_for(timeout=60_000)
    assert await page.locator("article.message", has_text="a storm over the sea").count() == 1

    # bob presses alice's button: refused, privately.
    await page.click("#as-bob")
    await page.locator(f'#m{message_id} button[data-label="U3"]').click()
    refusal = page.locator("article.message.ephemeral").last
    await refusal.wait_for(timeout=30_000)
    assert "who started this job" in await refusal.text_content()
    assert "Only you can see this" in await refusal.text_content()
    await page.click("#as-alice")
    await page.wait_for_selector(f"#m{message_id}")
    assert await page.locator("article.message.ephemeral").count() == 0  # bob's reply is bob's alone
