"""The three servers users run, as a parametrised ``sim`` fixture for end-to-end modules.

Import ``sim`` into a test module to run its scenarios against novicezk, trueai and new-api (in
front of novicezk, as the seed documents set it up). The bot is configured with each server's auth
style; nothing else in its settings changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.proxy_sim import ProxySim, SimTask
from tests.conftest import PROXY_SECRET

AUTH = {"novicezk": "mj-api-secret", "trueai": "authorization", "newapi": "bearer"}


class GatewaySim(ProxySim):
    """new-api refreshes its copy of a task only on its own poll; the tests' manual changes to
    the upstream task are followed by one, as if its 15-second cycle had come round."""

    def advance(self, task_id: str) -> SimTask:
        task = super().advance(task_id)
        self.gateway_poll()
        return task

    def succeed(self, task_id: str) -> SimTask:
        task = super().succeed(task_id)
        self.gateway_poll()
        return task

    def fail(self, task_id: str, reason: str = "任务失败") -> SimTask:
        task = super().fail(task_id, reason)
        self.gateway_poll()
        return task


@pytest.fixture(params=list(AUTH))
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[ProxySim]:
    flavour = request.param
    server = (
        GatewaySim(secret=PROXY_SECRET, flavour=flavour)
        if flavour == "newapi"
        else ProxySim(secret=PROXY_SECRET, flavour=flavour)
    )
    async with server:
        yield server
