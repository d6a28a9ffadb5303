"""The simulator's task (``SimTask``), the records it keeps (requests, notifyHook deliveries),
and how task ids, times and descriptions are made."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .timeline import (
    API_PREFIX,
    CHANGE_ACTIONS,
    DISCORD_INSTANCE_ID,
    MODAL,
    NOT_START,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    Step,
)


@dataclass
class SimTask:
    """The simulator's copy of a Midjourney Proxy task (snake_case; see to_json)."""

    id: str
    action: str
    prompt: str
    prompt_en: str
    description: str
    state: str | None
    notify_hook: str | None
    final_prompt: str
    submit_time: int
    timeline: tuple[Step, ...]
    parent_id: str | None = None  # the task a change was made from (kept internal, like novicezk)
    index: int | None = None  # 1-4 for UPSCALE / VARIATION
    blend_dimensions: str | None = None  # PORTRAIT / SQUARE / LANDSCAPE for BLEND
    status: str = NOT_START
    progress: str | None = None
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    fail_reason: str | None = None
    step: int = -1  # index of the timeline step last applied; -1 = not started
    previews: int = 0  # previews shown so far; numbers the preview images
    step_s: float = 0.0  # seconds between its steps in time mode (the sim's step_s, jittered)
    # Wall-clock (time.time()) marks for benchmarks: when it first became SUCCESS/FAILURE
    # (or CANCEL), and (time, status, progress) for every change the sim saved.
    finished_at: float | None = None
    state_times: list[tuple[float, str, str | None]] = field(default_factory=list)
    # trueai only (novicezk's JSON has none of these):
    buttons: list[dict[str, Any]] = field(default_factory=list)  # set on SUCCESS, [] otherwise
    seed: str | None = None  # set on SUCCESS
    # FAST / RELAX / TURBO: the mode it runs (and ended) in; trueai's "mode" (None: not chosen
    # yet, a describe without a path mode), and "requestMode", the mode asked for (modes.py).
    mode: str | None = "FAST"
    request_mode: str | None = None
    bot_type: str = "MID_JOURNEY"
    custom_id: str | None = None  # the button an action task was made from
    job_hash: str | None = None  # the <hash> in its buttons' customIds
    video: bool = False  # its result is an .mp4 (VIDEO, or one upscaled video of a batch)
    batch_size: int = 4  # VIDEO: how many videos the batch holds (1, 2 or 4)
    content_type: str | None = None  # trueai: "image/png" / "video/mp4" once SUCCESS
    mask: bool = False  # trueai Vary (Region): a maskBase64 came with /submit/modal

    @property
    def is_modal(self) -> bool:
        return self.status == MODAL

    @property
    def is_queued(self) -> bool:
        return self.status == NOT_START

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The Task as novicezk serialises it: every field present, nulls included."""
        return {
            "id": self.id,
            "action": self.action,
            "status": self.status,
            "progress": self.progress,
            "prompt": self.prompt,
            "promptEn": self.prompt_en,
            "description": self.description,
            "state": self.state,
            "submitTime": self.submit_time,
            "startTime": self.start_time,
            "finishTime": self.finish_time,
            "imageUrl": self.image_url,
            "failReason": self.fail_reason,
            "properties": {
                "notifyHook": self.notify_hook,
                "finalPrompt": self.final_prompt,
                "discordInstanceId": DISCORD_INSTANCE_ID,
            },
        }


@dataclass
class RecordedRequest:
    """One request as the simulator received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # the parsed body, or None when empty / not JSON
    body: bytes
    time: float
    # The API prefix the path used: "/mj", or trueai's "/mj-relax/mj" etc.; "" if neither.
    prefix: str = API_PREFIX


@dataclass
class Delivery:
    """One notifyHook POST attempt (a duplicated push gives two; a lost one says why)."""

    task_id: str
    url: str
    status: str
    progress: str | None
    http_status: int | None  # None when no answer came back
    error: str | None  # "dropped", "server down", "cancelled", an exception; None if answered
    at: float  # time.time() when the attempt was made
    payload: dict[str, Any]  # the Task JSON as it was when the task was saved

    @property
    def ok(self) -> bool:
        return self.error is None and self.http_status is not None and 200 <= self.http_status < 300


def _now_ms() -> int:
    return int(time.time() * 1000)


_last_task_id = 0


def _new_task_id() -> str:
    """A 16-digit id like novicezk's (epoch ms + 3 digits), unique in this process."""
    global _last_task_id
    _last_task_id = max(_now_ms() * 1000, _last_task_id + 1)
    return str(_last_task_id)


def _description(action: str, prompt: str, parent_id: str | None, index: int | None) -> str:
    """The task description novicezk stores: the Discord command it stands for."""
    if action == "IMAGINE" or parent_id is None:
        return f"/imagine {prompt}"
    if action not in CHANGE_ACTIONS and index is None:  # trueai's zoom, pan, ...
        return f"/up {parent_id} {action}"
    return f"/up {parent_id} " + ("R" if action == "REROLL" else f"{action[0]}{index}")
