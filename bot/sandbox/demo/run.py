"""Runs the demo until Ctrl-C: its page (web.py) first, so a taken port is said at once, then its
three parts (stage.py)."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot.sandbox.demo.stage import Demo
from bot.sandbox.demo.web import DemoPage


class DemoFailed(Exception):
    """The demo could not start; the message says why (the bot's log included)."""


async def run_demo(
    *, flavour: str, port: int, step_s: float, host: str = "127.0.0.1", ready: Callable[[str], None] = print
) -> None:
    """Run until Ctrl-C or SIGTERM, then stop everything and remove the temporary folder."""
    with tempfile.TemporaryDirectory(prefix="mjbot-demo-") as folder:
        demo = Demo(Path(folder), flavour=flavour, step_s=step_s)
        page = DemoPage(demo, host=host, port=port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await page.start()  # an OSError here: the port is taken
            await demo.start_world()
            starting = asyncio.create_task(demo.start_bot())
            waiting = asyncio.create_task(stop.wait())
            await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # Ctrl-C while the bot starts
                starting.cancel()
                return
            waiting.cancel()
            try:
                starting.result()
            except (RuntimeError, TimeoutError) as exc:
                raise DemoFailed(f"the bot did not start: {exc}") from None
            ready(f"mjbot demo ({flavour}): open {page.url} (Ctrl-C stops it; the bot's log is {demo.bot.log_path})")
            await stop.wait()
        finally:
            await page.stop()
            await demo.stop()
