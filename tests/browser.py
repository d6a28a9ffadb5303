"""Headless Chromium for the browser tests: Debian's ``chromium`` package, driven by Playwright's
Python package (``executable_path``: Playwright never downloads a browser here). ``.ci/run``
installs both on a fresh machine; elsewhere the tests are skipped, unless ``CI`` is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MJBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
# Without the background-networking switches Chromium keeps calling Google's hosts, which this
# machine's closed network refuses; --no-sandbox because CI runs as root.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM:
        return "Chromium is not installed (apt-get install chromium)"
    return None


def needs_chromium():
    """Skip a browser test where there is no browser, except in CI, where it must run."""
    missing = chromium_missing()
    if missing and os.environ.get("CI"):
        raise RuntimeError(f"CI needs the browser tests: {missing}")
    return pytest.mark.skipif(missing is not None, reason=missing or "")


@pytest.fixture
async def browser() -> AsyncIterator:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``MJBOT_SCREENSHOTS`` (to refresh the README's), else the test's folder."""
    where = Path(os.environ.get("MJBOT_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


async def no_sideways_scroll(page) -> None:
    """The page fits its viewport's width: nothing to scroll sideways on a phone."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"{page.url} is {width} px wide in a {viewport} px viewport"
