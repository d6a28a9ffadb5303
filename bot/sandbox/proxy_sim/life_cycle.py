"""ProxySim's task life cycle: making and holding tasks, applying timeline steps, and the one
place (``_save``) every change of a task goes through."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .tasks import SimTask, _new_task_id, _now_ms
from .timeline import MODAL, NOT_START, TERMINAL_STATUSES, Step


class _LifeCycleMixin:
    """ProxySim's internals: creating, registering and saving tasks."""

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _new_task(
        self,
        *,
        action: str,
        prompt: str,
        prompt_en: str,
        description: str,
        timeline: tuple[Step, ...] | None = None,
        **extra: Any,
    ) -> SimTask:
        if timeline is None:
            timeline = self._next_timelines.pop(0) if self._next_timelines else self.timeline
        return SimTask(
            id=_new_task_id(),
            action=action,
            prompt=prompt,
            prompt_en=prompt_en,
            description=description,
            final_prompt=extra.pop("final_prompt", prompt_en),
            submit_time=_now_ms(),
            timeline=timeline,
            **extra,
        )

    def _register(self, task: SimTask) -> None:
        """Hold a new task; the caller then saves it (queued) or advances it (started)."""
        if self.jitter:
            task.step_s = self.step_s * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        else:
            task.step_s = self.step_s
        self.tasks[task.id] = task
        self._actions[task.id] = task.action
        if task.video:
            self._videos.add(task.id)

    def _apply(self, task: SimTask, step: Step) -> None:
        task.status, task.progress = step.status, step.progress
        if step.image == "preview" and self.previews:
            task.previews += 1
            task.image_url = self.preview_url(task.id, task.previews)
        elif step.image == "final":
            task.image_url = self.final_url(task.id)
        if step.fail_reason is not None:
            task.fail_reason = step.fail_reason
        self._save(task)

    def _save(self, task: SimTask) -> None:
        """What novicezk's saveAndNotify does, plus the sim's bookkeeping: every change
        of a task goes through here exactly once."""
        self._upstream.on_save(task)  # trueai: buttons and seed on SUCCESS
        now = time.time()
        self._stamp_times(task, now)
        task.state_times.append((now, task.status, task.progress))
        if task.is_finished and task.finished_at is None:
            task.finished_at = now
        self._running.discard(task.id)
        self._queued_ids.pop(task.id, None)
        if task.is_running:
            self._running.add(task.id)
        elif task.is_queued:
            self._queued_ids[task.id] = None
        if self.mode == "time":
            self._schedule(task)
        self._push(task)
        self._notify()

    @staticmethod
    def _stamp_times(task: SimTask, now: float) -> None:
        now_ms = int(now * 1000)  # the same instant as finished_at / state_times
        if task.status not in (NOT_START, MODAL) and task.start_time is None:
            task.start_time = now_ms
        if task.status in TERMINAL_STATUSES and task.finish_time is None:
            task.finish_time = now_ms
