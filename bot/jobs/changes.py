"""What a proxy's answer changes of a job: pure functions, no state. An answer older than what is
known changes nothing (pushes arrive twice or out of order, a gateway may answer a poll with stale
data), which :func:`progress_rank` decides.
"""

from __future__ import annotations

import contextlib

from bot.core.models import Job, ProxyTask, Status, image_identity

_STATUS_RANK = {
    Status.UNKNOWN: 0,
    Status.NOT_START: 0,
    Status.SUBMITTED: 1,
    Status.MODAL: 1,
    Status.IN_PROGRESS: 2,
    Status.SUCCESS: 3,
    Status.FAILURE: 3,
    Status.CANCEL: 3,
}


def progress_rank(status: Status, progress: str | None) -> tuple[int, float]:
    """How far along a task is: status first, then the percentage (when it is one)."""
    percent = -1.0
    if progress:
        with contextlib.suppress(ValueError):
            percent = float(progress.strip().rstrip("%"))
    return _STATUS_RANK.get(status, 0), percent


def changes_of(job: Job, task: ProxyTask) -> dict[str, object] | None:
    """What ``task`` changes of ``job``; None when the proxy's answer is older than what we know."""
    if progress_rank(task.status, task.progress) < progress_rank(job.status, job.progress):
        return None
    changes: dict[str, object] = {}
    status = task.status
    if status is not job.status and status is not Status.UNKNOWN:
        changes["status"] = status
    if task.progress != job.progress:
        changes["progress"] = task.progress
    if (task.image_url or status.finished) and image_identity(task.image_url) != image_identity(job.image_url):
        changes["image_url"] = task.image_url
    if task.prompt_en and task.prompt_en != job.prompt_en:
        changes["prompt_en"] = task.prompt_en
    if task.final_prompt and task.final_prompt != job.final_prompt:
        changes["final_prompt"] = task.final_prompt
    if task.buttons and task.buttons != job.buttons:
        changes["buttons"] = task.buttons
    if status is Status.SUCCESS:
        # Read once the task is done: a video's clips, a grid's four images alone.
        videos, grid = task.videos, task.grid_images
        if videos and videos != job.videos:
            changes["videos"] = videos
        if grid and grid != job.grid_images:
            changes["grid_images"] = grid
    if status in (Status.FAILURE, Status.CANCEL):
        reason = task.fail_reason or task.description or "the proxy gave no reason"
        if reason != job.fail_reason:
            changes["fail_reason"] = reason
    if job.queue_ahead and status not in (Status.NOT_START, Status.SUBMITTED, Status.UNKNOWN):
        changes["queue_ahead"] = None
    if changes and task.image_url and task.image_url != job.image_url:
        changes["image_url"] = task.image_url  # with any other change, the freshest link
    return changes
