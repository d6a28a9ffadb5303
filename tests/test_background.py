"""The cancellation-safe wait every background loop sleeps on."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.background import wait_event


async def _cancel_as_event_fires(wait) -> asyncio.Task:
    event = asyncio.Event()
    waiter = asyncio.create_task(wait(event))
    await asyncio.sleep(0)  # the waiter is now blocked on the event
    event.set()  # the event fires and the stop arrives in the same instant
    waiter.cancel()
    return waiter


async def test_a_cancel_that_arrives_as_the_event_fires_is_not_swallowed():
    # This is what hung the simulator's stop(): asyncio.wait_for on 3.11 returns the
    # event's result and drops the cancellation, so the loop around it runs on.
    waiter = await _cancel_as_event_fires(lambda event: wait_event(event, 10))
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_wait_event_says_whether_the_event_fired():
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    assert await wait_event(event, None) is True
