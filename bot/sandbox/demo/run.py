"""Runs the demo until Ctrl-C: its three parts (stage.py) and its page (web.py)."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot.sandbox.demo.stage import Demo
from bot.sandbox.demo.web import DemoPage


async def run_demo(
    *, flavour: str, port: int, step_s: float, host: str = "127.0.0.1", ready: Callable[[str], None] = print
) -> None:
    """Run until Ctrl-C or SIGTERM, then stop everything; only the temporary folder is left, and it
    is removed too."""
    with tempfile.TemporaryDirectory(prefix="mjbot-demo-") as folder:
        demo = Demo(Path(folder), flavour=flavour, step_s=step_s)
        page = DemoPage(demo, host=host, port=port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await demo.start()
            await page.start()
            ready(f"mjbot demo ({flavour}): open {page.url} (Ctrl-C stops it; the bot's log is {demo.bot.log_path})")
            await stop.wait()
        finally:
            await page.stop()
            await demo.stop()
