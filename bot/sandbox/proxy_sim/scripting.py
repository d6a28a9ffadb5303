"""ProxySim's scripting of task state (timelines, advancing, finishing, forgetting and adding
tasks directly) and its automatic steps (poll mode, and time mode's clock)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from typing import Any

from bot.core.background import wait_event

from .tasks import SimTask, _description
from .timeline import CANCEL, FAILURE, SUCCESS, Step, _as_timeline

_UNSET: Any = object()


class _ScriptingMixin:
    """ProxySim's task-state scripting, for tests."""

    # ---- scripting: task state -----------------------------------------

    def next_timeline(self, steps: Iterable[Step | tuple]) -> None:
        """Use this timeline for the next task created (calls queue up, one per task)."""
        self._next_timelines.append(_as_timeline(steps))

    def advance(self, task_id: str) -> SimTask:
        """Move a task one step along its timeline.

        A queued (NOT_START) task starts even if every slot is busy: the test decides.
        A finished task, one at the end of its timeline, or one waiting for /submit/modal
        (trueai's MODAL) stays where it is.
        """
        task = self.tasks[task_id]
        if not task.is_finished and not task.is_modal and task.step + 1 < len(task.timeline):
            task.step += 1
            self._apply(task, task.timeline[task.step])
        return task

    def tick(self) -> None:
        """Advance every unfinished task one step, all together (time mode moves each
        task on its own clock instead).

        Queued tasks start only when a slot is free, oldest first.
        """
        for task in list(self.tasks.values()):
            self._auto_advance(task)

    def start_queued(self) -> list[str]:
        """Start queued tasks, oldest first, while a running slot is free."""
        started = []
        # Takes from the head of the queue, so a clock wake-up with no free slot is O(1).
        while self._queued_ids and len(self._running) < self.max_running:
            task_id = next(iter(self._queued_ids))
            self.advance(task_id)
            if task_id in self._queued_ids:  # its timeline keeps it waiting: do not spin
                break
            started.append(task_id)
        return started

    def set_state(
        self,
        task_id: str,
        *,
        status: str = _UNSET,
        progress: str | None = _UNSET,
        image_url: str | None = _UNSET,
        fail_reason: str | None = _UNSET,
    ) -> SimTask:
        """Overwrite fields of a task (times follow the status); its timeline position is kept."""
        task = self.tasks[task_id]
        if status is not _UNSET:
            task.status = status
        if progress is not _UNSET:
            task.progress = progress
        if image_url is not _UNSET:
            task.image_url = image_url
        if fail_reason is not _UNSET:
            task.fail_reason = fail_reason
        self._save(task)
        return task

    def succeed(self, task_id: str) -> SimTask:
        """Finish a task now: SUCCESS, "100%", and its final image."""
        task = self.tasks[task_id]
        task.status, task.progress = SUCCESS, "100%"
        task.image_url = self.final_url(task_id)
        self._save(task)
        return task

    def fail(self, task_id: str, reason: str = "任务失败") -> SimTask:
        """Fail a task now, as novicezk does: FAILURE, progress "", failReason."""
        task = self.tasks[task_id]
        task.status, task.progress, task.fail_reason = FAILURE, "", reason
        self._save(task)
        return task

    def cancel(self, task_id: str, reason: str = "任务已取消") -> SimTask:
        """Give a task status CANCEL now (terminal), failReason, progress kept: trueai's enum has
        it, but trueai's own ``POST /task/{id}/cancel`` makes FAILURE ``取消任务`` (task_routes.py)."""
        task = self.tasks[task_id]
        task.status, task.fail_reason = CANCEL, reason
        self._save(task)
        return task

    def forget(self, task_id: str) -> None:
        """Drop a task, as a server restart with an in-memory store does: unknown from now on.

        Its images stay downloadable (they stand in for CDN links). For new-api this
        is the upstream forgetting it: new-api's copy stays, frozen.
        """
        self.tasks.pop(task_id, None)
        self._running.discard(task_id)
        self._queued_ids.pop(task_id, None)
        self._notify()

    def add_task(
        self,
        prompt: str = "a cat",
        *,
        action: str = "IMAGINE",
        parent_id: str | None = None,
        index: int | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
        timeline: Iterable[Step | tuple] | None = None,
        started: bool = True,
    ) -> SimTask:
        """Create a task directly (no HTTP, no queue limits), e.g. one the bot knew before a restart.

        For new-api the task is the upstream's, and new-api holds a copy of it too.
        """
        task = self._new_task(
            action=action,
            prompt=prompt,
            prompt_en=prompt,
            description=_description(action, prompt, parent_id, index),
            timeline=None if timeline is None else _as_timeline(timeline),
            state=state,
            notify_hook=notify_hook,
            parent_id=parent_id,
            index=index,
        )
        self._register(task)
        if started:
            self.advance(task.id)
        else:
            self._save(task)  # created queued: that is its first save
        if self.flavour == "newapi":
            self._gateway_track(task.id)
        return task

    # ---- internals: automatic steps (poll and time modes) ---------------------

    def _auto_advance(self, task: SimTask) -> None:
        """One automatic step (poll and time modes): queued tasks wait for a slot, in order."""
        if task.id not in self.tasks or task.is_finished:
            return
        if task.is_queued:
            if len(self._running) >= self.max_running or next(iter(self._queued_ids)) != task.id:
                return
        self.advance(task.id)

    # ---- internals: time mode -------------------------------------------

    def _schedule(self, task: SimTask) -> None:
        """Make a running task due one step_s from now, unless it already is due."""
        self._wake.set()  # a slot may have freed up, or this step is due before the others
        if task.is_running and task.id not in self._scheduled:
            self._scheduled.add(task.id)
            self._due_seq += 1
            # time.monotonic(), not the loop's clock: tasks may be added before start().
            due = time.monotonic() + task.step_s
            heapq.heappush(self._due, (due, self._due_seq, task.id))

    async def _run_clock(self) -> None:
        """Time mode: move each task when its own step is due; start queued ones as slots free.

        A heap keeps each wake-up O(log n) in the tasks held, so thousands can run at once.
        """
        while True:
            self._wake.clear()
            self.start_queued()
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, _, task_id = heapq.heappop(self._due)
                self._scheduled.discard(task_id)
                task = self.tasks.get(task_id)
                if task is not None:
                    self._auto_advance(task)  # saves, which schedules its next step
            if self._wake.is_set():
                continue  # those steps may have freed slots
            delay = max(0.0, self._due[0][0] - time.monotonic()) if self._due else None
            await wait_event(self._wake, delay)
