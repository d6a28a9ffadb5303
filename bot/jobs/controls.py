"""A job's owner (or an admin) acting on it through the server: cancel it while it runs (trueai's
``POST /task/{id}/cancel``) and ask for its seed (``GET /task/{id}/image-seed``, as Midjourney's ✉️).

Which servers can cancel is learned from their tasks: trueai's carry ``botType`` (Models/TaskInfo.cs),
novicezk's and new-api's do not (new-api has no cancel route; novicezk neither), and kept in the
database so the ⏹ button shows from the first message after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bot.core.access import AccessPolicy, Requester
from bot.core.errors import (
    CancelUnsupported,
    JobNotReady,
    ProxyEndpointMissing,
    SeedUnsupported,
)
from bot.core.models import Job, ProxyTask, Status
from bot.proxy.client import ProxyClient
from bot.storage import Store

log = logging.getLogger(__name__)

CAN_CANCEL_KEY = "proxy_can_cancel"  # meta: "yes" once a trueai task was seen, "no" after a 404


class Controls:
    def __init__(
        self, proxy: ProxyClient, store: Store, policy: AccessPolicy, *, confirm: Callable[[str], None]
    ) -> None:
        self.proxy = proxy
        self.store = store
        self.policy = policy
        self._confirm = confirm  # asks the tracker to read the task again now
        self.can_cancel = False
        self._remembering: asyncio.Task[None] | None = None

    async def load(self) -> None:
        self.can_cancel = await self.store.get_meta(CAN_CANCEL_KEY) == "yes"

    def learn(self, tasks: Sequence[ProxyTask]) -> None:
        """A trueai task (it says ``botType``) tells that the server can cancel."""
        if not self.can_cancel and any(task.bot_type for task in tasks):
            self.can_cancel = True
            log.info("the proxy is trueai (its tasks say botType): ⏹ cancels running jobs")
            self._remembering = asyncio.get_running_loop().create_task(self._remember())

    async def _remember(self) -> None:
        try:
            await self.store.set_meta(CAN_CANCEL_KEY, "yes")
        except Exception:  # noqa: BLE001 - learned again from the next task after a restart
            log.warning("remembering that the proxy can cancel failed", exc_info=True)

    async def cancel(self, task_id: str, who: Requester) -> Job:
        job = await self._own(task_id, who, "cancel")
        if job.finished:
            raise JobNotReady(f"job {task_id} is {job.status.value}: nothing to cancel", task_id=task_id)
        try:
            await self.proxy.cancel_task(task_id)
        except ProxyEndpointMissing as exc:
            self.can_cancel = False
            await self.store.set_meta(CAN_CANCEL_KEY, "no")
            raise CancelUnsupported(f"the proxy has no cancel: {exc}") from None
        log.info("task %s: cancel asked by user %s", task_id, who.user_id)
        self._confirm(task_id)  # the proxy now says FAILURE (trueai: 取消任务): read it at once
        return job

    async def seed(self, task_id: str, who: Requester) -> str:
        job = await self._own(task_id, who, "ask the seed of")
        if job.status is not Status.SUCCESS:
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        try:
            return await self.proxy.image_seed(task_id)
        except ProxyEndpointMissing as exc:
            raise SeedUnsupported(f"the proxy has no image-seed: {exc}") from None

    async def _own(self, task_id: str, who: Requester, what: str) -> Job:
        return self.policy.check_owner(who, await self.store.get_job(task_id), task_id, what)
