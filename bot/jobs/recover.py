"""Recovering submissions cut off before the proxy's answer was stored (the bot died, or the answer
timed out): each submit carries its submission's nonce as the task's ``state``, so the proxy's recent
tasks tell which were accepted after all. Those become jobs; the others are given up in time, which
frees their button. The tracker adopts what is found here; nothing here tracks anything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from bot.core.config import Settings
from bot.core.errors import ProxyEndpointMissing, ProxyError
from bot.core.models import Job, ProxyTask, Submission
from bot.proxy.client import ProxyClient
from bot.storage import Conflict, Store

log = logging.getLogger(__name__)

RECOVERY_GRACE_S = 10.0  # beyond the proxy timeout, before a pending submission counts as cut off
# A submission whose answer was lost is looked for this long; then it counts as never accepted, so
# the member can try again (they are told this bound when the answer is lost).
SUBMISSION_GIVE_UP_S = 600.0


class Recovery:
    """Owns whether submissions may wait to be recovered, and since when this process runs (its own
    submits still waiting for an answer are not lost)."""

    def __init__(self, settings: Settings, proxy: ProxyClient, store: Store, *, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self._clock = clock
        self.pending = False  # submissions may wait to be recovered
        self._started_at = clock()

    def started(self) -> None:
        """The process (re)starts: submissions left by the last one may wait."""
        self._started_at = self._clock()
        self.pending = True

    def submission_unconfirmed(self) -> None:
        """A submit's answer was lost: look for its task on the next ticks."""
        self.pending = True

    async def recovered(self) -> AsyncIterator[tuple[Job, ProxyTask]]:
        """Jobs stored now for tasks the proxy accepted but the bot never stored, each with the
        proxy's task, for the tracker to adopt (one at a time, before the next is looked at)."""
        now = self._clock()
        # Submits of this process still waiting for their answer are not lost (yet).
        cutoff = max(self._started_at, now - self.settings.proxy.timeout_s - RECOVERY_GRACE_S)
        waiting = await self.store.submissions(before=float("inf"))
        if not waiting:
            self.pending = False
            return
        pending = [submission for submission in waiting if submission.created_at < cutoff]
        if not pending:
            return
        try:
            tasks = {task.state: task for task in await self.proxy.recent_tasks() if task.state}
        except ProxyEndpointMissing:
            tasks = {}
            log.warning("the proxy cannot list its tasks; %d interrupted submissions cannot be checked", len(pending))
        except ProxyError:
            # Not for ever: past the bound a submission is given up even while the list fails.
            await self._give_up([s for s in pending if now - s.created_at > SUBMISSION_GIVE_UP_S])
            raise
        for submission in pending:
            task = tasks.get(submission.nonce)
            if task is not None and await self.store.get_job(task.id) is not None:
                await self.store.delete_submission(submission.nonce)  # stored after all
            elif task is not None:
                log.warning(
                    "task %s: recovered a submission interrupted before its answer was stored "
                    "(%s by user %s in channel %s)",
                    task.id,
                    submission.action,
                    submission.owner_id,
                    submission.channel_id,
                )
                job = submission.to_job(task.id, self._clock()).with_changes(created_at=submission.created_at)
                try:
                    await self.store.insert_job(job)
                except Conflict:
                    log.error("task %s: recovered, but its button already has a job; dropped", task.id)
                    await self.store.delete_submission(
                        submission.nonce, refund="its button already has a job", now=self._clock()
                    )
                    continue
                yield job, task
            elif not tasks or now - submission.created_at > SUBMISSION_GIVE_UP_S:
                await self._give_up([submission])

    async def _give_up(self, submissions: Sequence[Submission]) -> None:
        """The proxy cannot confirm these: count them as never accepted, which frees their button."""
        for submission in submissions:
            log.warning(
                "submission %s (%s by user %s in channel %s) could not be confirmed by the proxy; "
                "counting it as never accepted",
                submission.nonce,
                submission.action,
                submission.owner_id,
                submission.channel_id,
            )
            await self.store.delete_submission(
                submission.nonce, refund="the proxy never confirmed it", now=self._clock()
            )
