"""A scriptable stand-in for a Midjourney Proxy server, for mjbot's tests.

The simulator is a real aiohttp server on 127.0.0.1, so the bot's own HTTP
client is exercised end to end (auth header, JSON parsing, timeouts, refused
connections). It speaks the novicezk/midjourney-proxy v2.x dialect described in
``docs/mj-proxy-contract.md``; other servers (trueai, new-api) differ in auth,
error shapes and unknown-task answers, and can be added later as another
``_Flavour`` subclass selected by ``ProxySim(flavour=...)``.

Tests drive it deterministically, without sleeping::

    async with ProxySim(secret="s3cret") as sim:
        ...                              # the bot submits /imagine
        task_id = next(iter(sim.tasks))
        sim.advance(task_id)             # SUBMITTED -> IN_PROGRESS 10%
        sim.succeed(task_id)             # SUCCESS with the final image
        await sim.wait_for(lambda: sim.count("/image/" + task_id + ".png"))

With a ``notifyHook`` (per task in the submit body, or ``ProxySim(notify_hook=url)``)
the sim POSTs the Task JSON on every change, as the real servers do; ``deliveries``
records each attempt, and drop / duplicate / reorder script the ways pushes go wrong::

    sim.drop_next_deliveries(1)         # the next push is lost
    sim.succeed(task_id)
    await sim.wait_deliveries()         # nothing in flight any more

Run it by hand with ``python -m tests.proxy_sim --port 8080 --mode time``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import heapq
import http
import json
import random
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_TIMELINE",
    "FAILURE",
    "Delivery",
    "IN_PROGRESS",
    "NOT_START",
    "SUBMITTED",
    "SUCCESS",
    "ProxySim",
    "RecordedRequest",
    "SimTask",
    "Step",
    "png_bytes",
]

API_PREFIX = "/mj"
DISCORD_INSTANCE_ID = "1"

NOT_START = "NOT_START"
SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
TERMINAL_STATUSES = frozenset({SUCCESS, FAILURE})
RUNNING_STATUSES = frozenset({SUBMITTED, IN_PROGRESS})

CHANGE_ACTIONS = frozenset({"UPSCALE", "VARIATION", "REROLL"})
# novicezk only lets these be the parent of a change (no upscale of an upscale).
CHANGEABLE_PARENT_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})

MODES = ("manual", "poll", "time")

# Side of every generated image, in pixels. Small on purpose: tests compare bytes.
IMAGE_SIDE = 64


# --------------------------------------------------------------------------
# Timelines


@dataclass(frozen=True)
class Step:
    """One state a task passes through.

    ``image`` is ``"preview"`` (a new preview URL, if the sim has previews on),
    ``"final"`` (the final image URL) or None (leave ``imageUrl`` unchanged).
    """

    status: str
    progress: str | None
    image: str | None = None
    fail_reason: str | None = None


DEFAULT_TIMELINE: tuple[Step, ...] = (
    Step(SUBMITTED, "0%"),
    Step(IN_PROGRESS, "10%", "preview"),
    Step(IN_PROGRESS, "40%", "preview"),
    Step(IN_PROGRESS, "80%", "preview"),
    Step(SUCCESS, "100%", "final"),
)


def _as_timeline(steps: Iterable[Step | tuple]) -> tuple[Step, ...]:
    """Accept Step objects or plain tuples such as ``("FAILURE", "", None, "任务超时")``."""
    timeline = tuple(s if isinstance(s, Step) else Step(*s) for s in steps)
    if not timeline:
        raise ValueError("a timeline needs at least one step")
    for step in timeline:
        if step.image not in (None, "preview", "final"):
            raise ValueError(f"unknown step image {step.image!r}")
    return timeline


# --------------------------------------------------------------------------
# Tasks and recorded requests


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
    status: str = NOT_START
    progress: str | None = None
    start_time: int | None = None
    finish_time: int | None = None
    image_url: str | None = None
    fail_reason: str | None = None
    step: int = -1  # index of the timeline step last applied; -1 = not started
    previews: int = 0  # previews shown so far; numbers the preview images
    step_s: float = 0.0  # seconds between its steps in time mode (the sim's step_s, jittered)
    # Wall-clock (time.time()) marks for benchmarks: when it first became SUCCESS/FAILURE,
    # and (time, status, progress) for every change the sim saved.
    finished_at: float | None = None
    state_times: list[tuple[float, str, str | None]] = field(default_factory=list)

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


@dataclass
class _Push:
    """A delivery waiting to be sent; the payload is a snapshot taken at the save."""

    task_id: str
    url: str
    payload: dict[str, Any]
    drop: bool = False
    copies: int = 1


@dataclass
class _PushFault:
    left: int
    task_id: str | None  # None: any task


@dataclass
class _ScriptedFailure:
    path_suffix: str
    kind: str
    times: int | None  # None: every matching request until clear_failures()
    description: str | None
    properties: dict | None
    result: Any
    body: Any
    content_type: str | None


_FAILURE_KINDS = ("http500_spring", "html502", "empty200", "malformed", "unauthorized")
_FAILURE_PREFIXES = ("status:", "delay:", "code:")

# Descriptions novicezk uses for each submit code, for fail_next("code:N").
_CODE_DESCRIPTIONS = {
    1: "提交成功",
    3: "关联任务不存在或已失效",
    4: "参数错误",
    9: "提交失败，系统异常",
    21: "任务已存在",
    22: "排队中，前面还有1个任务",
    23: "队列已满，请稍后尝试",
    24: "可能包含敏感词",
}

_NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,(.+)", re.DOTALL)


def _now_ms() -> int:
    return int(time.time() * 1000)


_last_task_id = 0


def _new_task_id() -> str:
    """A 16-digit id like novicezk's (epoch ms + 3 digits), unique in this process."""
    global _last_task_id
    _last_task_id = max(_now_ms() * 1000, _last_task_id + 1)
    return str(_last_task_id)


def _json_response(data: Any, status: int = 200) -> web.Response:
    # ensure_ascii=False: the real servers send Chinese descriptions as UTF-8.
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
    )


def _spring_error(status: int, path: str) -> web.Response:
    """The body Spring Boot answers with when a request fails outside a controller."""
    return _json_response(
        {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "status": status,
            "error": http.HTTPStatus(status).phrase,
            "path": path,
        },
        status=status,
    )


def _is_data_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    match = _DATA_URL.fullmatch(value)
    if match is None:
        return False
    try:
        base64.b64decode(match.group(1), validate=True)
    except binascii.Error:
        return False
    return True


def _description(action: str, prompt: str, parent_id: str | None, index: int | None) -> str:
    """The task description novicezk stores: the Discord command it stands for."""
    if action == "IMAGINE" or parent_id is None:
        return f"/imagine {prompt}"
    return f"/up {parent_id} " + ("R" if action == "REROLL" else f"{action[0]}{index}")


def _parse_index(value: Any) -> int | None:
    """The 1-4 index of a change; Jackson also accepts it as a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= 4:
        return value
    return None


# --------------------------------------------------------------------------
# Server flavours: what differs between novicezk, trueai and new-api


class _Flavour:
    """Answers that differ between server implementations (only novicezk so far)."""

    name = "novicezk"

    def authorized(self, headers: dict[str, str], secret: str | None) -> bool:
        return not secret or headers.get("mj-api-secret") == secret

    def unauthorized(self) -> web.Response:
        return web.Response(status=401)  # novicezk: status only, empty body

    def unknown_task(self) -> web.Response:
        return web.Response(status=200)  # the controller returns null: empty 200

    def submit_result(
        self, code: int, description: str, result: Any = None, properties: dict | None = None
    ) -> web.Response:
        # novicezk answers every submit outcome with HTTP 200.
        return _json_response(
            {"code": code, "description": description, "result": result, "properties": properties or {}}
        )


_FLAVOURS: dict[str, type[_Flavour]] = {"novicezk": _Flavour}


# --------------------------------------------------------------------------
# PNG generation (pure Python, so no image library is needed)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rows: Iterable[bytes], pad_to: int | None = None) -> bytes:
    """Encode RGB rows (``width * 3`` bytes each) as a PNG.

    With ``pad_to``, a tEXt chunk is added so the file is (at least) that many bytes:
    decoders skip it, so the image stays valid while being as big as a test needs.
    """
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
    end = _png_chunk(b"IEND", b"")
    size = len(PNG_SIGNATURE) + len(body) + len(end)
    if pad_to is not None and pad_to > size:
        keyword = b"Comment\x00"
        filler = max(0, pad_to - size - 12 - len(keyword))  # 12: chunk length + type + CRC
        body += _png_chunk(b"tEXt", keyword + b" " * filler)
    return PNG_SIGNATURE + body + end


def _colour(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:3]


def _render(task_id: str, kind: str, n: int = 0, pad_to: int | None = None) -> bytes:
    """The picture for one task: a 2x2 grid, a solid upscale or a gradient preview."""
    side = IMAGE_SIDE
    half = side // 2
    if kind == "grid":
        quads = [_colour(f"{task_id}:grid:{q}") for q in range(4)]
        top = quads[0] * half + quads[1] * half
        bottom = quads[2] * half + quads[3] * half
        rows = [top] * half + [bottom] * half
    elif kind == "upscale":
        rows = [_colour(f"{task_id}:upscale") * side] * side
    elif kind == "preview":
        colour = _colour(f"{task_id}:preview:{n}")
        rows = [bytes(c * y // (side - 1) for c in colour) * side for y in range(side)]
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return png_bytes(side, side, rows, pad_to)


_IMAGE_NAME = re.compile(r"(\d+)(?:-preview-(\d+))?\.png")


# --------------------------------------------------------------------------
# The simulator


_UNSET: Any = object()


class ProxySim:
    """An in-process Midjourney Proxy (novicezk flavour) that tests can script."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        flavour: str = "novicezk",
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "manual",
        step_s: float = 1.0,
        timeline: Iterable[Step | tuple] = DEFAULT_TIMELINE,
        previews: bool = True,
        max_running: int = 3,
        max_queue: int = 10,
        banned_words: Iterable[str] = (),
        final_image_size: int | None = None,
        notify_hook: str | None = None,
        notify_timeout_s: float = 5.0,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if flavour not in _FLAVOURS:
            raise ValueError(f"unsupported flavour {flavour!r} (have: {', '.join(_FLAVOURS)})")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "time" and step_s <= 0:
            raise ValueError("step_s must be positive in time mode")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1): a step can neither vanish nor go back in time")
        self.secret = secret
        self.flavour = flavour
        self._flavour = _FLAVOURS[flavour]()
        self.host = host
        self.port = port  # 0 until started: then the port actually bound
        self.mode = mode
        self.step_s = step_s
        self.timeline = _as_timeline(timeline)
        self.previews = previews
        self.max_running = max_running
        self.max_queue = max_queue
        self.banned_words = list(banned_words)
        self.final_image_size = final_image_size
        self.notify_hook = notify_hook  # novicezk's global mj.notify-hook: for tasks without one
        self.notify_timeout_s = notify_timeout_s
        self.jitter = jitter
        self._rng = random.Random(seed)

        self.tasks: dict[str, SimTask] = {}  # insertion order = submit order = queue order
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []  # every notifyHook attempt, in the order made

        # Ids by state, kept up to date on every save, so admitting, ticking and polling
        # stay O(1) per task with thousands held (a dict is an ordered set: queue order).
        self._running: set[str] = set()
        self._queued_ids: dict[str, None] = {}

        # Time mode: each running task is due for its next step at its own time.
        self._due: list[tuple[float, int, str]] = []  # heap of (loop time, tie-break, id)
        self._scheduled: set[str] = set()  # ids in the heap, so a task is in it once
        self._due_seq = 0
        self._wake = asyncio.Event()  # a save happened: a slot may be free, a step due earlier

        # notifyHook deliveries. A lane is a queue sent in order by one worker: one lane
        # per task keeps each task's pushes in order while tasks go out side by side.
        self._session: aiohttp.ClientSession | None = None
        self._lanes: dict[Any, deque[_Push]] = {}
        self._workers: set[asyncio.Task] = set()
        self._in_flight = 0  # pushes in lanes, including those being sent
        self._held: list[_Push] = []  # saved while paused or reordering
        self._paused = False
        self._reorder = False
        self._drops: list[_PushFault] = []
        self._duplicates: list[_PushFault] = []

        self._next_timelines: list[tuple[Step, ...]] = []
        self._failures: list[_ScriptedFailure] = []
        self._actions: dict[str, str] = {}  # every id ever created -> action; outlives forget()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task | None = None
        self._started = False
        # Set while the server shuts down, so delayed answers give up at once.
        self._closing = asyncio.Event()
        # Replaced on every change; wait_for() sleeps on the current one. An Event is
        # used rather than a Condition because the test-facing mutators are synchronous.
        self._changed = asyncio.Event()

    # ---- lifecycle ------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/mj``: what the bot is configured with."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def is_down(self) -> bool:
        return self._started and self._runner is None

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("the simulator is already started")
        await self._listen()
        self._started = True
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.notify_timeout_s))
        if self.mode == "time":
            self._ticker = asyncio.create_task(self._run_clock(), name="proxy-sim-clock")

    async def stop(self) -> None:
        """Stop the clock, give up deliveries not yet made (recorded as "cancelled"), close."""
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self._stop_deliveries()
        await self._close()
        self._started = False

    async def __aenter__(self) -> ProxySim:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def set_down(self, down: bool) -> None:
        """Take the server off the network (connections refused) or bring it back.

        Going down closes the listening socket and open keep-alive connections, like
        a crashed or restarting server; tasks are kept, and in time mode they keep
        moving. Coming back listens on the same port.
        """
        if not self._started:
            raise RuntimeError("start the simulator first")
        if down and self._runner is not None:
            await self._close()
        elif not down and self._runner is None:
            await self._listen()
        self._notify()

    async def _listen(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(API_PREFIX + "/submit/imagine", self._imagine)
        app.router.add_post(API_PREFIX + "/submit/change", self._change)
        app.router.add_get(API_PREFIX + "/task/{id}/fetch", self._fetch)
        app.router.add_post(API_PREFIX + "/task/list-by-condition", self._list_by_condition)
        app.router.add_get(API_PREFIX + "/task/list", self._list_all)
        app.router.add_get(API_PREFIX + "/image/{name}", self._image)
        # A short shutdown timeout keeps test teardown fast when a client is mid-request.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._closing.set()
            await runner.cleanup()

    # ---- scripting: task state -----------------------------------------

    def next_timeline(self, steps: Iterable[Step | tuple]) -> None:
        """Use this timeline for the next task created (calls queue up, one per task)."""
        self._next_timelines.append(_as_timeline(steps))

    def advance(self, task_id: str) -> SimTask:
        """Move a task one step along its timeline.

        A queued (NOT_START) task starts even if every slot is busy: the test decides.
        A finished task, or one at the end of its timeline, stays where it is.
        """
        task = self.tasks[task_id]
        if not task.is_finished and task.step + 1 < len(task.timeline):
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

    def forget(self, task_id: str) -> None:
        """Drop a task, as a server restart with an in-memory store does: unknown from now on.

        Its images stay downloadable (they stand in for CDN links).
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
        """Create a task directly (no HTTP, no queue limits), e.g. one the bot knew before a restart."""
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
        return task

    # ---- scripting: transport failures ---------------------------------

    def fail_next(
        self,
        path_suffix: str = "",
        kind: str = "http500_spring",
        times: int | None = 1,
        *,
        description: str | None = None,
        properties: dict | None = None,
        result: Any = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path ends with ``path_suffix`` badly.

        ``times=None`` keeps failing until clear_failures(); an empty suffix matches
        every request. Kinds: http500_spring, html502, empty200, malformed,
        unauthorized, ``status:<N>`` (``body``/``content_type`` optional),
        ``delay:<seconds>`` (then answer normally), ``code:<N>`` (a submit result
        with ``description``/``properties``/``result``). Scripted answers come before
        the auth check and the request has no other effect (except for delay).
        """
        _check_kind(kind)
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for always")
        self._failures.append(
            _ScriptedFailure(path_suffix, kind, times, description, properties, result, body, content_type)
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    # ---- scripting: notifyHook deliveries -------------------------------
    # Faults are decided when a task is saved, not when the POST goes out, so a test
    # knows exactly which change they hit even while earlier pushes are still queued.

    def drop_next_deliveries(self, n: int = 1, task_id: str | None = None) -> None:
        """Lose the next ``n`` deliveries (of ``task_id`` only, if given): recorded as "dropped"."""
        self._drops.append(_PushFault(_at_least_one(n), task_id))

    def duplicate_next_deliveries(self, n: int = 1, task_id: str | None = None) -> None:
        """Send each of the next ``n`` deliveries twice, back to back (a dropped one is not sent)."""
        self._duplicates.append(_PushFault(_at_least_one(n), task_id))

    def reorder_deliveries(self, on: bool = True) -> None:
        """While on, hold deliveries back; flush_deliveries() (or turning it off) sends
        them newest first, one after another, so e.g. 80% arrives after SUCCESS."""
        self._reorder = on
        if not on and not self._paused:
            self._release(reverse=True)

    def pause_deliveries(self) -> None:
        """Hold deliveries back until resume_deliveries() (or flush_deliveries())."""
        self._paused = True

    def resume_deliveries(self) -> None:
        """Send what was held, in the order it was saved, and stop holding."""
        self._paused = False
        if not self._reorder:
            self._release(reverse=False)

    async def flush_deliveries(self, timeout: float = 5.0) -> None:
        """Send the held deliveries now (newest first while reordering) and wait until
        every delivery under way is done. Holding goes on for later saves."""
        self._release(reverse=self._reorder)
        await self.wait_for(lambda: self._in_flight == 0, timeout)

    async def wait_deliveries(self, timeout: float = 5.0) -> None:
        """Wait until no delivery is in flight or held (TimeoutError otherwise)."""
        await self.wait_for(lambda: self._in_flight == 0 and not self._held, timeout)

    # ---- inspection -----------------------------------------------------

    def count(self, path_suffix: str = "", method: str | None = None) -> int:
        """How many requests (any outcome) had a path ending with ``path_suffix``."""
        return sum(
            1
            for r in self.requests
            if r.path.endswith(path_suffix) and (method is None or r.method == method.upper())
        )

    def last_request(self, path_suffix: str = "") -> RecordedRequest | None:
        for record in reversed(self.requests):
            if record.path.endswith(path_suffix):
                return record
        return None

    def final_url(self, task_id: str) -> str:
        return f"{self.base_url}/image/{task_id}.png"

    def preview_url(self, task_id: str, n: int = 1) -> str:
        return f"{self.base_url}/image/{task_id}-preview-{n}.png"

    def image_bytes(self, task_id: str) -> bytes:
        """The bytes served at the task's final image URL (grid, or one image for UPSCALE)."""
        kind = "upscale" if self._actions[task_id] == "UPSCALE" else "grid"
        return _render(task_id, kind, pad_to=self.final_image_size)

    def preview_bytes(self, task_id: str, n: int = 1) -> bytes:
        if task_id not in self._actions:
            raise KeyError(task_id)
        return _render(task_id, "preview", n)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        Wakes on every request and state change, and re-checks at least every 50 ms
        because the predicate may look at the bot's state as well.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            try:
                await asyncio.wait_for(self._changed.wait(), min(0.05, remaining))
            except TimeoutError:
                pass

    # ---- internals: task life cycle ------------------------------------

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
        if task.status != NOT_START and task.start_time is None:
            task.start_time = now_ms
        if task.status in TERMINAL_STATUSES and task.finish_time is None:
            task.finish_time = now_ms

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
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    # ---- internals: notifyHook deliveries --------------------------------

    def _push(self, task: SimTask) -> None:
        """Queue a POST of the task as it is now to its hook (or the global one)."""
        url = task.notify_hook or self.notify_hook
        if not url:
            return
        push = _Push(task.id, url, task.to_json())
        push.drop = _take_fault(self._drops, task.id)
        if not push.drop and _take_fault(self._duplicates, task.id):
            push.copies = 2
        if self._session is None:  # not started, or stopped: nothing can go out
            self._record(push, None, "dropped" if push.drop else "not running", time.time())
        elif self._runner is None:  # set_down(): off the network, so pushes are lost too
            self._record(push, None, "dropped" if push.drop else "server down", time.time())
        elif self._paused or self._reorder:
            self._held.append(push)
        else:
            self._enqueue(task.id, [push])

    def _release(self, *, reverse: bool) -> None:
        """Send what was held: newest first on one lane when reversing, else per task."""
        held, self._held = self._held, []
        if reverse:
            self._enqueue(object(), held[::-1])
        else:
            for push in held:
                self._enqueue(push.task_id, [push])

    def _enqueue(self, lane: Any, pushes: list[_Push]) -> None:
        if not pushes:
            return
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            worker = asyncio.create_task(self._drain(lane, queue), name="proxy-sim-notify")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.extend(pushes)
        self._in_flight += len(pushes)

    async def _drain(self, lane: Any, queue: deque[_Push]) -> None:
        try:
            while queue:
                await self._send(queue[0])
                queue.popleft()  # only now: stop() finds the one being sent still queued
                self._in_flight -= 1
                self._notify()
        finally:
            # No await between the empty check and this: _enqueue cannot slip in between.
            if self._lanes.get(lane) is queue:
                del self._lanes[lane]

    async def _send(self, push: _Push) -> None:
        """POST the push (once, or twice if duplicated); no retries, like the real servers."""
        if push.drop:
            self._record(push, None, "dropped", time.time())
            return
        body = json.dumps(push.payload, ensure_ascii=False).encode()
        for _ in range(push.copies):
            at = time.time()
            try:
                async with self._session.post(
                    push.url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    await response.read()
                self._record(push, response.status, None, at)
            except Exception as exc:  # refused, timed out, bad URL: the delivery is lost
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._record(push, None, error, at)

    def _record(self, push: _Push, http_status: int | None, error: str | None, at: float) -> None:
        payload = push.payload
        self.deliveries.append(
            Delivery(push.task_id, push.url, payload["status"], payload["progress"], http_status, error, at, payload)
        )

    async def _stop_deliveries(self) -> None:
        queues = list(self._lanes.values())  # workers remove their lane when cancelled
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        # What never went out is lost, as when a real server stops; say so in the record.
        for push in [p for queue in queues for p in queue] + self._held:
            self._record(push, None, "cancelled", time.time())
        self._lanes.clear()
        self._held = []
        self._in_flight = 0
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._notify()

    def _admit(self, task: SimTask) -> web.Response:
        """Run the task or queue it, like novicezk's per-account executor."""
        queued = len(self._queued_ids)
        if len(self._running) < self.max_running and queued == 0:
            self._register(task)
            self.advance(task.id)
            return self._flavour.submit_result(
                1, "提交成功", task.id, {"discordInstanceId": DISCORD_INSTANCE_ID}
            )
        if queued < self.max_queue:
            # novicezk counts only the tasks already waiting, and says code 1 when
            # that count is 0; the simulator always says 22 for a task that waits.
            self._register(task)
            self._save(task)
            return self._flavour.submit_result(
                22,
                f"排队中，前面还有{queued}个任务",
                task.id,
                {"numberOfQueues": queued, "discordInstanceId": DISCORD_INSTANCE_ID},
            )
        return self._flavour.submit_result(
            23, "队列已满，请稍后尝试", None, {"discordInstanceId": DISCORD_INSTANCE_ID}
        )

    def _banned_word(self, prompt: str) -> str | None:
        """The banned word as written in the prompt, matched as a whole word, any case."""
        for word in self.banned_words:
            match = re.search(rf"\b{re.escape(word)}\b", prompt, re.IGNORECASE)
            if match:
                return match.group(0)
        return None

    # ---- internals: HTTP ------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed,
            body=raw,
            time=time.time(),
        )
        self.requests.append(record)
        self._notify()

        failure = self._take_failure(request.path)
        if failure is not None:
            if not failure.kind.startswith("delay:"):
                return self._failure_response(failure, request.path)
            if await self._delay(float(failure.kind.split(":", 1)[1])):
                return web.Response(status=503)  # shutting down: the client is gone anyway

        # Images stand in for CDN links, which need no secret.
        if not request.path.startswith(API_PREFIX + "/image/"):
            if not self._flavour.authorized(record.headers, self.secret):
                return self._flavour.unauthorized()
        try:
            return await handler(request)
        except web.HTTPException as exc:  # no route, wrong method: Spring's error body
            if exc.status < 400:
                raise
            return _spring_error(exc.status, request.path)

    def _take_failure(self, path: str) -> _ScriptedFailure | None:
        for failure in self._failures:
            if path.endswith(failure.path_suffix):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times == 0:
                        self._failures.remove(failure)
                return failure
        return None

    async def _delay(self, seconds: float) -> bool:
        """Sleep; True if the server started shutting down meanwhile."""
        closing = self._closing
        try:
            await asyncio.wait_for(closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _failure_response(self, failure: _ScriptedFailure, path: str) -> web.Response:
        kind = failure.kind
        if kind == "http500_spring":
            return _spring_error(500, path)
        if kind == "html502":
            return web.Response(
                status=502, text=_NGINX_502, content_type="text/html", headers={"Server": "nginx"}
            )
        if kind == "empty200":
            return web.Response(status=200)
        if kind == "malformed":
            return web.Response(status=200, text='{"code":1,', content_type="application/json")
        if kind == "unauthorized":
            return web.Response(status=401)
        number = int(kind.split(":", 1)[1])
        if kind.startswith("code:"):
            description = failure.description or _CODE_DESCRIPTIONS.get(number, "失败")
            return self._flavour.submit_result(number, description, failure.result, failure.properties)
        # status:<N>
        if failure.body is None:
            return _spring_error(number, path)
        if isinstance(failure.body, (dict, list)):
            return web.Response(
                status=number,
                text=json.dumps(failure.body, ensure_ascii=False),
                content_type=failure.content_type or "application/json",
            )
        data = failure.body.encode() if isinstance(failure.body, str) else failure.body
        return web.Response(status=number, body=data, content_type=failure.content_type or "text/plain")

    @staticmethod
    async def _json_object(request: web.Request) -> dict | None:
        """The JSON object sent, or None (Spring would answer 400 to anything else)."""
        try:
            body = json.loads(await request.read())  # aiohttp caches the bytes read earlier
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        if body is None:
            return _spring_error(400, request.path)
        submit = self._flavour.submit_result
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return submit(4, "prompt不能为空")
        prompt = prompt.strip()
        # novicezk checks banned words (on the translated prompt) before the images.
        banned = self._banned_word(prompt)
        if banned is not None:
            return submit(24, "可能包含敏感词", None, {"promptEn": prompt, "bannedWord": banned})
        images = list(body.get("base64Array") or [])
        if body.get("base64"):
            images.append(body["base64"])
        if not all(_is_data_url(image) for image in images):
            return submit(4, "base64格式错误")
        task = self._new_task(
            action="IMAGINE",
            prompt=prompt,
            prompt_en=prompt,
            description=_description("IMAGINE", prompt, None, None),
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
        )
        return self._admit(task)

    async def _change(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        if body is None:
            return _spring_error(400, request.path)
        submit = self._flavour.submit_result
        parent_id = body.get("taskId")
        action = body.get("action")
        if not parent_id or not str(parent_id).strip():
            return submit(4, "taskId不能为空")
        parent_id = str(parent_id)
        if action not in CHANGE_ACTIONS:
            return submit(4, "action参数错误")
        index = None
        if action != "REROLL":
            index = _parse_index(body.get("index"))
            if index is None:
                return submit(4, "index参数错误")
        parent = self.tasks.get(parent_id)
        if parent is None:
            return submit(3, "关联任务不存在或已失效")
        if parent.status != SUCCESS:
            return submit(4, "关联任务状态错误")
        if parent.action not in CHANGEABLE_PARENT_ACTIONS:
            return submit(4, "关联任务不允许执行变化")
        task = self._new_task(
            action=action,
            prompt=parent.prompt,
            prompt_en=parent.prompt_en,
            description=_description(action, parent.prompt, parent_id, index),
            final_prompt=parent.final_prompt,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            parent_id=parent_id,
            index=index,
        )
        return self._admit(task)

    async def _fetch(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return self._flavour.unknown_task()
        response = _json_response(task.to_json())
        if self.mode == "poll":
            self._auto_advance(task)  # after serialising: the caller sees the old state
        return response

    async def _list_all(self, request: web.Request) -> web.Response:
        """novicezk's GET /task/list: every task it still holds, newest first."""
        return _json_response([task.to_json() for task in reversed(self.tasks.values())])

    async def _list_by_condition(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        if body is None:
            return _spring_error(400, request.path)
        ids = dict.fromkeys(str(i) for i in body.get("ids") or [])  # dedupe, keep order
        found = [self.tasks[i] for i in ids if i in self.tasks]
        response = _json_response([task.to_json() for task in found])
        if self.mode == "poll":
            for task in found:
                self._auto_advance(task)
        return response

    async def _image(self, request: web.Request) -> web.Response:
        match = _IMAGE_NAME.fullmatch(request.match_info["name"])
        if match is None or match.group(1) not in self._actions:
            return web.Response(status=404, text="Not Found")
        task_id, preview = match.group(1), match.group(2)
        data = self.preview_bytes(task_id, int(preview)) if preview else self.image_bytes(task_id)
        return web.Response(body=data, content_type="image/png")


def _at_least_one(n: int) -> int:
    if n < 1:
        raise ValueError("n must be at least 1")
    return n


def _take_fault(faults: list[_PushFault], task_id: str) -> bool:
    """Use up one scripted push fault that applies to this task, if any."""
    for fault in faults:
        if fault.task_id is None or fault.task_id == task_id:
            fault.left -= 1
            if fault.left == 0:
                faults.remove(fault)
            return True
    return False


def _check_kind(kind: str) -> None:
    if kind in _FAILURE_KINDS:
        return
    prefix, _, value = kind.partition(":")
    try:
        if prefix == "delay":
            if float(value) >= 0:
                return
        elif prefix in ("status", "code"):
            int(value)
            return
    except ValueError:
        pass
    raise ValueError(
        f"unknown failure kind {kind!r}; use one of {', '.join(_FAILURE_KINDS)} "
        f"or {', '.join(p + '<N>' for p in _FAILURE_PREFIXES)}"
    )


# --------------------------------------------------------------------------
# Standalone use: python -m tests.proxy_sim


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a simulated Midjourney Proxy (novicezk) until interrupted.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret", default=None, help="require this mj-api-secret header")
    parser.add_argument("--mode", choices=MODES, default="time")
    parser.add_argument("--step-s", type=float, default=1.0, help="seconds per step in time mode")
    parser.add_argument("--max-running", type=int, default=3)
    parser.add_argument("--max-queue", type=int, default=10)
    parser.add_argument("--banned-word", action="append", default=[], help="repeat for several words")
    parser.add_argument("--no-previews", action="store_true", help="no preview imageUrl while running")
    parser.add_argument("--final-image-size", type=int, default=None, help="pad final images to this many bytes")
    parser.add_argument("--notify-hook", default=None, help="POST every task change here (global hook)")
    parser.add_argument("--jitter", type=float, default=0.0, help="time mode: vary each task's step by +-this fraction")
    parser.add_argument("--seed", type=int, default=None, help="seed for --jitter")
    args = parser.parse_args(argv)

    async def serve() -> None:
        sim = ProxySim(
            args.secret,
            host=args.host,
            port=args.port,
            mode=args.mode,
            step_s=args.step_s,
            max_running=args.max_running,
            max_queue=args.max_queue,
            banned_words=args.banned_word,
            previews=not args.no_previews,
            final_image_size=args.final_image_size,
            notify_hook=args.notify_hook,
            jitter=args.jitter,
            seed=args.seed,
        )
        async with sim:
            print(f"Midjourney Proxy simulator ({sim.flavour}, {sim.mode} mode) at {sim.base_url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
