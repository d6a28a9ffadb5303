"""A scriptable stand-in for a Midjourney Proxy server, for mjbot's tests.

The simulator is a real aiohttp server on 127.0.0.1, so the bot's own HTTP
client is exercised end to end (auth header, JSON parsing, timeouts, refused
connections). It speaks one of three dialects described in
``docs/mj-proxy-contract.md``, chosen by ``ProxySim(flavour=...)``:

- ``"novicezk"`` (the default): novicezk/midjourney-proxy v2.x.
- ``"trueai"``: trueai-org/midjourney-proxy: raw ``Authorization`` secret, no
  ``/submit/change``, ``buttons`` and ``/submit/action`` / ``/submit/modal``,
  status MODAL and CANCEL, ``/mj-relax/mj/...`` style speed prefixes. Upscales carry
  the real button set (Upscale (Subtle/Creative) with ``"emoji": "upscale_1"``, Vary
  (Subtle/Strong/Region), zoom, pans, Animate (High/Low motion), reroll), chosen by the
  prompt's ``--v``/``--niji`` version (v7 when it names none). Animate and
  ``/submit/video`` make VIDEO tasks whose ``imageUrl`` is an ``.mp4`` the sim serves
  (with ``videoUrl``, ``videoUrls``, ``contentType: "video/mp4"``, U1-U4
  ``video_virtual_upscale`` buttons). Limits answer trueai's LogicException body
  (HTTP 200 ``{"success": false, "code": -1, "message": ..., "timestamp": ...}``):
  ``fail_next(path, kind="logic", description=...)`` or ``user_core_size`` /
  ``user_queue_size``.
- ``"newapi"``: the QuantumNous (formerly Calcium-Ion) new-api gateway in front of an
  ``upstream`` (``"novicezk"`` or ``"trueai"``): Bearer keys, "code":22 turned into 1
  (21 too, except Custom Zoom / Vary (Region)), its own 400 errors, customIds it cannot
  convert (animate, video_virtual_upscale, PicReader, BOOKMARK) refused with 400 and
  models a key may not use with 403 (``denied_models``), the web UI's index.html (200)
  for every path it has no route for, ``?rand=<ns>`` on the preview URL at every read
  until SUCCESS, and a stale copy of each task refreshed only by its own poll
  (``gateway_poll()``, or every ``gateway_poll_s`` in poll and time modes).

Every fact above is taken from the servers' source; the comment next to each behaviour
names the file (docs/mj-proxy-contract.md, "What the servers really send").

Tests drive it deterministically, without sleeping::

    async with ProxySim(secret="s3cret") as sim:
        ...                              # the bot submits /imagine
        task_id = next(iter(sim.tasks))
        sim.advance(task_id)             # SUBMITTED -> IN_PROGRESS 10%
        sim.succeed(task_id)             # SUCCESS with the final image
        await sim.wait_for(lambda: sim.count("/image/" + task_id + ".png"))

``sim.tasks`` always holds the server's own tasks (for new-api: the upstream's);
new-api's copies, as the bot sees them, are in ``sim.gateway_tasks``.

With a ``notifyHook`` (per task in the submit body, or ``ProxySim(notify_hook=url)``)
the sim POSTs the Task JSON on every change, as the real servers do; ``deliveries``
records each attempt, and drop / duplicate / reorder script the ways pushes go wrong::

    sim.drop_next_deliveries(1)         # the next push is lost
    sim.succeed(task_id)
    await sim.wait_deliveries()         # nothing in flight any more

Run it by hand with ``python -m tests.proxy_sim --port 8080 --mode time``
(``--flavour trueai``, ``--flavour newapi --upstream trueai``).
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
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from bot.background import wait_event

__all__ = [
    "CANCEL",
    "DEFAULT_TIMELINE",
    "FAILURE",
    "FLAVOURS",
    "IN_PROGRESS",
    "MODAL",
    "NEWAPI_INDEX_HTML",
    "NOT_START",
    "SUBMITTED",
    "SUCCESS",
    "UPSCALE_EMOJI",
    "Delivery",
    "ProxySim",
    "RecordedRequest",
    "SimTask",
    "Step",
    "mp4_bytes",
    "png_bytes",
]

API_PREFIX = "/mj"
DISCORD_INSTANCE_ID = "1"

NOT_START = "NOT_START"
SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
MODAL = "MODAL"  # trueai: waiting for /submit/modal (not running, not finished)
CANCEL = "CANCEL"  # trueai: cancelled (terminal)
TERMINAL_STATUSES = frozenset({SUCCESS, FAILURE, CANCEL})
RUNNING_STATUSES = frozenset({SUBMITTED, IN_PROGRESS})

CHANGE_ACTIONS = frozenset({"UPSCALE", "VARIATION", "REROLL"})
# novicezk only lets these be the parent of a change (no upscale of an upscale).
CHANGEABLE_PARENT_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
# trueai: the tasks whose result is a grid of four (U1-U4, reroll, V1-V4 buttons).
GRID_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND", "ZOOM", "PAN"})
DESCRIBE_MARKS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
# What /describe answers: four prompts in Midjourney's style.
DESCRIBED = (
    "a red fox sitting in fresh snow, soft morning light, wildlife photography --ar 1:1",
    "watercolor painting of a fox in a winter forest, muted palette --ar 1:1",
    "a curious fox looks at the camera, shallow depth of field, 85mm --ar 1:1",
    "minimalist illustration of an orange fox on white background --ar 1:1",
)

FLAVOURS = ("novicezk", "trueai", "newapi")
UPSTREAMS = ("novicezk", "trueai")  # what new-api can relay to
# trueai serves every route under these prefixes too; the task records the speed.
SPEED_PREFIXES = {"/mj-fast/mj": "FAST", "/mj-relax/mj": "RELAX", "/mj-turbo/mj": "TURBO"}
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")

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
    mode: str = "FAST"  # FAST / RELAX / TURBO: from the /mj-<speed>/mj prefix used
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


_FAILURE_KINDS = ("http500_spring", "html502", "empty200", "malformed", "unauthorized", "logic")
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


def _dotnet_ticks() -> str:
    """DateTime.Now.Ticks as a string (trueai's Result.Timestamp): 100 ns steps since 0001-01-01."""
    return str(time.time_ns() // 100 + 621_355_968_000_000_000)


def _logic_error(message: str) -> web.Response:
    """trueai's answer when a LogicException escapes a controller: HTTP 200 and Result.Fail(message),
    i.e. success false, code -1, message, timestamp; no data field, no SubmitResultVO code
    (Filters/CustomLogicExceptionFilterAttribute.cs, Models/Result.cs)."""
    return _json_response({"success": False, "code": -1, "message": message, "timestamp": _dotnet_ticks()})


def mp4_bytes(seed: str, size: int = 320) -> bytes:
    """A few hundred bytes that start like an MP4 (an ``ftyp`` box, then ``mdat``): not playable,
    but what a client sniffing the type of a video link sees first."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isommp41"
    payload = b""
    counter = 0
    while len(payload) < max(0, size - len(ftyp) - 8):
        payload += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    payload = payload[: max(0, size - len(ftyp) - 8)]
    return ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


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
    if action not in CHANGE_ACTIONS and index is None:  # trueai's zoom, pan, ...
        return f"/up {parent_id} {action}"
    return f"/up {parent_id} " + ("R" if action == "REROLL" else f"{action[0]}{index}")


_WINDOW_WAIT = "Waiting for window confirm"  # trueai's code 21 text (Services/TaskService.cs SubmitAction)
_BATCH_SIZE = re.compile(r"--bs\s+(\d+)", re.IGNORECASE)


def _video_batch_size(prompt: str | None) -> int:
    """TaskInfo.GetVideoBatchSize (Models/TaskInfo.cs): ``--bs N`` (1-4) in the prompt, else 4."""
    match = _BATCH_SIZE.search(prompt or "")
    if match and 1 <= int(match.group(1)) <= 4:
        return int(match.group(1))
    return 4


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


@dataclass
class _Outcome:
    """What a submit came to, before a flavour puts it on the wire."""

    code: int
    description: str
    result: Any = None
    properties: dict | None = None


def _speed_of(path: str) -> str | None:
    """FAST / RELAX / TURBO for trueai's /mj-<speed>/mj prefixes; None for plain /mj."""
    for prefix, speed in SPEED_PREFIXES.items():
        if path.startswith(prefix + "/"):
            return speed
    return None


def _prefix_of(path: str) -> str:
    for prefix in SPEED_PREFIXES:
        if path.startswith(prefix + "/"):
            return prefix
    return API_PREFIX if path.startswith(API_PREFIX + "/") else ""


def _problem(status: int, errors: dict[str, list[str]]) -> web.Response:
    """ASP.NET Core's validation answer (trueai), e.g. for a botType it cannot bind."""
    return web.Response(
        status=status,
        text=json.dumps(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": status,
                "errors": errors,
                "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
            },
            ensure_ascii=False,
        ),
        content_type="application/problem+json",
        charset="utf-8",
    )


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "style": 2, "type": 2}


def _grid_buttons(job_hash: str) -> list[dict[str, Any]]:
    """U1-U4, reroll, V1-V4: what Midjourney puts under a grid."""
    return (
        [_button(f"MJ::JOB::upsample::{n}::{job_hash}", f"U{n}") for n in range(1, 5)]
        + [_button(f"MJ::JOB::reroll::0::{job_hash}::SOLO", emoji="🔄")]
        + [_button(f"MJ::JOB::variation::{n}::{job_hash}", f"V{n}") for n in range(1, 5)]
    )


_PANS = (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️"))
_VARY_EMOJI = "\U0001fa84"  # 🪄, CustomComponentModel.GetEmojiFromCodePoint(0x1FA84)
_FILM_EMOJI = "🎞️"  # Animate / Extend buttons
_REROLL_EMOJI = "🔄"
# trueai's upscale buttons carry the *name* of Midjourney's custom Discord emoji, not a
# Unicode emoji (Models/CustomComponentModel.cs CreateUpscaleButtons; Discord accounts keep
# btn.Emoji.Name, Services/DiscordWebSocketService.cs).
UPSCALE_EMOJI = "upscale_1"
DEFAULT_VERSION = "v 7"  # the sim's default model version when a prompt names none (see _version)
_VERSION_FLAG = re.compile(r"--(v|version|niji)\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


def _version(prompt: str | None, bot_type: str = "MID_JOURNEY") -> str:
    """``"v 7"``, ``"v 6.1"``, ``"niji 6"``: the model version a prompt asks for, in the form
    trueai's TaskInfo.GetVersion returns (Models/TaskInfo.cs). trueai's own default is v 8.1,
    whose upscales have no upscale/zoom/pan buttons; the sim assumes v 7 so a plain prompt
    gets the full set (write ``--v 8`` in the prompt for the v8 set)."""
    match = None
    for match in _VERSION_FLAG.finditer(prompt or ""):
        pass  # the last flag wins, as in Midjourney
    niji = bot_type == "NIJI_JOURNEY"
    if match is None:
        return "niji 7" if niji else DEFAULT_VERSION
    flag, number = match.group(1).lower(), match.group(2)
    return f"{'niji' if niji or flag == 'niji' else 'v'} {number}"


def _version_number(version: str) -> float:
    try:
        return float(version.split(" ")[-1])
    except ValueError:
        return 0.0


def _hd_upscale_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Upscale (Subtle) / (Creative), as CustomComponentModel.CreateUpscaleButtons makes them
    (Models/CustomComponentModel.cs): the customId names the model version."""
    if version.startswith("v 8"):
        return []  # v8 dropped the upscale buttons
    if version.startswith(("v 7", "niji 7")):
        kinds, labels = ("v7_2x_subtle", "v7_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith("v 6.1"):
        kinds, labels = ("v6r1_2x_subtle", "v6r1_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith(("v 6", "niji 6")):
        kinds, labels = ("v6_2x_subtle", "v6_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith(("v 5", "niji 5")):
        kinds, labels = ("v5_2x", "v5_4x"), ("Upscale (2x)", "Upscale (4x)")
    elif _version_number(version) < 5:
        return []
    else:
        number = version.split(" ")[-1]
        kinds = (f"v{number}_2x_subtle", f"v{number}_2x_creative")
        labels = ("Upscale (Subtle)", "Upscale (Creative)")
    return [
        _button(f"MJ::JOB::upsample_{kind}::1::{job_hash}::SOLO", label, UPSCALE_EMOJI)
        for kind, label in zip(kinds, labels, strict=True)
    ]


def _vary_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Vary (Subtle), Vary (Strong), and Vary (Region) from v5 on (CreateVaryButtons)."""
    buttons = [
        _button(f"MJ::JOB::low_variation::1::{job_hash}::SOLO", "Vary (Subtle)", _VARY_EMOJI),
        _button(f"MJ::JOB::high_variation::1::{job_hash}::SOLO", "Vary (Strong)", _VARY_EMOJI),
    ]
    if _version_number(version) >= 5:
        buttons.append(_button(f"MJ::Inpaint::1::{job_hash}::SOLO", "Vary (Region)", "🖌️"))
    return buttons


def _zoom_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Zoom Out 2x / 1.5x and Custom Zoom, for 5 <= version < 8 (CreateZoomButtons)."""
    if not 5 <= _version_number(version) < 8:
        return []
    return [
        _button(f"MJ::Outpaint::50::1::{job_hash}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{job_hash}::SOLO", "Zoom Out 1.5x", "🔍"),
        # CreateZoomButtons writes "MJ::CustomZoom::1::<hash>"; Discord's own button (and
        # Resources/ApiParams/upscale_buttons.json) is "MJ::CustomZoom::<hash>": both are accepted.
        _button(f"MJ::CustomZoom::1::{job_hash}", "Custom Zoom", "🔍"),
    ]


def _pan_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    if not 5 <= _version_number(version) < 8:
        return []
    return [_button(f"MJ::JOB::pan_{side}::1::{job_hash}::SOLO", emoji=emoji) for side, emoji in _PANS]


def _animate_buttons(job_hash: str) -> list[dict[str, Any]]:
    """CustomComponentModel.CreateAnimateButtons: make a video of this image."""
    return [
        _button(f"MJ::JOB::animate_high::1::{job_hash}::SOLO", "Animate (High motion)", _FILM_EMOJI),
        _button(f"MJ::JOB::animate_low::1::{job_hash}::SOLO", "Animate (Low motion)", _FILM_EMOJI),
    ]


def _reroll_button(job_hash: str) -> dict[str, Any]:
    return _button(f"MJ::JOB::reroll::0::{job_hash}::SOLO", emoji=_REROLL_EMOJI)


def _upscale_buttons(job_hash: str, version: str = DEFAULT_VERSION, video: bool = True) -> list[dict[str, Any]]:
    """What trueai puts under an upscale (U1-U4), in TaskInfo.OnUpscaleButtons' order
    (Models/TaskInfo.cs): Upscale (Subtle/Creative), Vary (Subtle/Strong/Region), Zoom Out
    2x/1.5x, Custom Zoom, the four pans, Animate (High/Low motion) when video is enabled
    (Setting.EnableVideo), and reroll."""
    return [
        *_hd_upscale_buttons(job_hash, version),
        *_vary_buttons(job_hash, version),
        *_zoom_buttons(job_hash, version),
        *_pan_buttons(job_hash, version),
        *(_animate_buttons(job_hash) if video else []),
        _reroll_button(job_hash),
    ]


def _upscale_hd_buttons(job_hash: str, version: str = DEFAULT_VERSION) -> list[dict[str, Any]]:
    """Under an Upscale (Subtle/Creative) result, action UPSCALE_HD: TaskInfo.OnUpscale2xButtons
    (Models/TaskInfo.cs): vary, zoom, animate (always) and reroll; no upscale, no pan."""
    return [
        *_vary_buttons(job_hash, version),
        *_zoom_buttons(job_hash, version),
        *_animate_buttons(job_hash),
        _reroll_button(job_hash),
    ]


def _video_buttons(job_hash: str, count: int = 4) -> list[dict[str, Any]]:
    """Under a VIDEO batch: U1-U<count> (video_virtual_upscale, emoji "") and reroll
    (TaskInfo.SetVideoUpscaleButtons, Models/TaskInfo.cs)."""
    return [
        *(_button(f"MJ::JOB::video_virtual_upscale::{n}::{job_hash}", f"U{n}", "") for n in range(1, count + 1)),
        _reroll_button(job_hash),
    ]


def _video_extend_buttons(job_hash: str) -> list[dict[str, Any]]:
    """Under one upscaled video: Extend (High/Low motion) (TaskInfo.SetVideoExtendButtons)."""
    return [
        _button(f"MJ::JOB::animate_high_extend::1::{job_hash}", "Extend (High motion)", _FILM_EMOJI),
        _button(f"MJ::JOB::animate_low_extend::1::{job_hash}", "Extend (Low motion)", _FILM_EMOJI),
    ]


# customId -> task action, as trueai's SubmitController.Action reads them (Controllers/SubmitController.cs).
_CUSTOM_ID_ACTIONS = (
    (re.compile(r"MJ::JOB::upsample::([1-4])::.+"), "UPSCALE"),
    (re.compile(r"MJ::JOB::video_virtual_upscale::([1-4])::.+"), "UPSCALE"),  # one video of a batch
    (re.compile(r"MJ::JOB::upsample_[0-9a-z_]+::1::.+"), "UPSCALE_HD"),  # Upscale (Subtle/Creative/2x/4x)
    (re.compile(r"MJ::JOB::variation::([1-4])::.+"), "VARIATION"),
    (re.compile(r"MJ::JOB::(?:high|low)_variation::1::.+"), "VARIATION"),
    (re.compile(r"MJ::JOB::reroll::0::.+"), "REROLL"),
    (re.compile(r"MJ::Outpaint::\d+::1::.+"), "ZOOM"),
    (re.compile(r"MJ::CustomZoom::.+"), "ZOOM"),
    (re.compile(r"MJ::Inpaint::1::.+"), "VARIATION"),  # Vary (Region): waits for a mask
    (re.compile(r"MJ::JOB::pan_(?:left|right|up|down)::1::.+"), "PAN"),
    (re.compile(r"MJ::JOB::animate_(?:high|low)(?:_extend)?::1::.+"), "VIDEO"),
)


def _action_of(custom_id: str) -> tuple[str, int | None] | None:
    """The task action a button's customId makes, and the image index (U/V buttons only)."""
    for pattern, action in _CUSTOM_ID_ACTIONS:
        match = pattern.fullmatch(custom_id)
        if match:
            return action, int(match.group(1)) if match.groups() else None
    return None


class _Flavour:
    """What differs between server implementations; this base class is novicezk.

    ProxySim's handlers ask the flavour how to authenticate, which routes exist and
    how answers and tasks look on the wire. The task logic (queue, timelines, buttons)
    stays in ProxySim and follows ``sim._upstream``: the flavour whose tasks the
    sim holds (the flavour itself, or the server behind new-api).
    """

    name = "novicezk"
    prefixes: tuple[str, ...] = (API_PREFIX,)
    endpoints = frozenset({"imagine", "change", "describe", "blend", "fetch", "list-by-condition", "list"})
    queue_full = (23, "队列已满，请稍后尝试")
    fails_banned_later = False  # trueai accepts a banned prompt and fails the task afterwards

    def __init__(self, sim: ProxySim | None = None) -> None:
        self.sim = sim

    def authorized(self, headers: dict[str, str], secret: str | None) -> bool:
        return not secret or headers.get("mj-api-secret") == secret

    def unauthorized(self, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=401)  # novicezk: status only, empty body

    def unknown_task(self) -> web.Response:
        return web.Response(status=200)  # the controller returns null: empty 200

    def status_for(self, code: int) -> int:
        return 200  # novicezk answers every submit outcome with HTTP 200

    def submit_result(
        self, code: int, description: str, result: Any = None, properties: dict | None = None
    ) -> web.Response:
        return _json_response(
            {"code": code, "description": description, "result": result, "properties": properties or {}},
            status=self.status_for(code),
        )

    def render(self, outcome: _Outcome | web.Response) -> web.Response:
        if isinstance(outcome, web.Response):
            return outcome
        return self.submit_result(outcome.code, outcome.description, outcome.result, outcome.properties)

    def http_error(self, status: int, request: web.Request) -> web.Response:
        return _spring_error(status, request.path)  # no route, wrong method

    def bad_body(self, request: web.Request) -> web.Response:
        return _spring_error(400, request.path)  # Spring cannot read the JSON

    def task_json(self, task: SimTask) -> dict[str, Any]:
        data = task.to_json()
        # newTask stores the submit's notifyHook, or the server's global one, in the Task's
        # properties, and every read (fetch, list, list-by-condition) shows it: novicezk
        # controller/SubmitController.java newTask; trueai Controllers/SubmitController.cs NewTask.
        if data["properties"]["notifyHook"] is None and self.sim is not None:
            data["properties"]["notifyHook"] = self.sim.notify_hook
        return data

    def on_save(self, task: SimTask) -> None:
        """Called on every save of a task, before it is stamped and pushed."""

    async def submit(self, kind: str, request: web.Request, body: dict) -> web.Response:
        return self.render(self.sim._run_submit(kind, body, _speed_of(request.path)))

    def view(self, task_id: str) -> dict[str, Any] | None:
        """The task as fetch and list-by-condition show it; None if unknown."""
        task = self.sim.tasks.get(task_id)
        return None if task is None else self.task_json(task)

    def after_read(self, task_ids: Iterable[str]) -> None:
        """Poll mode: each read moves the task one step (after it was serialised)."""
        sim = self.sim
        if sim.mode == "poll":
            for task_id in task_ids:
                task = sim.tasks.get(task_id)
                if task is not None:
                    sim._auto_advance(task)


class _TrueaiFlavour(_Flavour):
    """trueai-org/midjourney-proxy (C#, ASP.NET Core)."""

    name = "trueai"
    prefixes = (API_PREFIX, *SPEED_PREFIXES)
    endpoints = frozenset(
        {"imagine", "action", "modal", "describe", "blend", "video", "fetch", "list-by-condition", "list"}
    )
    queue_full = (9, "队列已满，请稍后尝试")
    fails_banned_later = True

    def authorized(self, headers: dict[str, str], secret: str | None) -> bool:
        if not secret:
            return True
        # Authorization wins when both are sent, and is compared as is: no "Bearer " stripping.
        return (headers.get("authorization") or headers.get("mj-api-secret")) == secret

    def unauthorized(self, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=401, text="Unauthorized", content_type="text/plain")

    def unknown_task(self) -> web.Response:
        return web.Response(status=204)  # ASP.NET turns a null result into 204 No Content

    def status_for(self, code: int) -> int:
        return 404 if code == 3 else 200  # NotFound(SubmitResultVO) for a missing task

    def http_error(self, status: int, request: web.Request) -> web.Response:
        return web.Response(status=status)  # ASP.NET: status only, empty body

    def bad_body(self, request: web.Request) -> web.Response:
        return _problem(400, {"$": ["The JSON value could not be converted."]})

    def task_json(self, task: SimTask) -> dict[str, Any]:
        data = super().task_json(task)
        data.update(
            buttons=[dict(button) for button in task.buttons],
            parentId=task.parent_id,
            seed=task.seed,
            mode=task.mode,
            botType=task.bot_type,
            customId=task.custom_id,
            contentType=task.content_type,
            videoUrl=None,
            videoUrls=None,
            imageUrls=None,
        )
        if task.video and task.status == SUCCESS:
            # Models/TaskInfo.cs (SuccessAsync): a VIDEO task's imageUrl IS the .mp4; videoUrl
            # repeats it and videoUrls / imageUrls list each video of the batch with a thumbnail.
            sim = self.sim
            data["videoUrl"] = task.image_url
            if task.action == "VIDEO":
                items = [{"url": sim.video_url(task.id, i), "thumbnail": sim.thumbnail_url(task.id, i)}
                         for i in range(task.batch_size)]
            else:  # one upscaled video
                items = [{"url": task.image_url, "thumbnail": sim.thumbnail_url(task.id, 0)}]
            data["videoUrls"] = items
            data["imageUrls"] = [dict(item) for item in items]
        return data

    def on_save(self, task: SimTask) -> None:
        if task.status != SUCCESS:
            task.buttons = []  # none while running, waiting, failed or cancelled
            task.content_type = None
            return
        sim = self.sim
        if task.seed is None:
            task.seed = str(sim._ids_rng.randrange(10**8, 2**32))
        if task.job_hash is None:
            task.job_hash = sim._job_hash()
        version = _version(task.final_prompt or task.prompt, task.bot_type)
        if task.action == "UPSCALE" and task.video:
            task.buttons = _video_extend_buttons(task.job_hash)  # one video of a batch
        elif task.action == "UPSCALE":
            task.buttons = _upscale_buttons(task.job_hash, version, sim.video)
        elif task.action == "UPSCALE_HD":
            task.buttons = _upscale_hd_buttons(task.job_hash, version)
        elif task.action == "VIDEO":
            task.buttons = _video_buttons(task.job_hash, task.batch_size)
        elif task.action in GRID_ACTIONS:
            task.buttons = _grid_buttons(task.job_hash)
        else:
            task.buttons = []
        # The Discord attachment's content type (DiscordWebSocketService.cs sets ContentType).
        task.content_type = "video/mp4" if task.video else "image/png"


def _newapi_key(headers: dict[str, str]) -> str:
    """The key new-api reads: mj-api-secret first, else Authorization; "Bearer " and "sk-" stripped."""
    key = headers.get("mj-api-secret") or headers.get("authorization") or ""
    return key.removeprefix("Bearer ").removeprefix("sk-")


class _NewApiFlavour(_Flavour):
    """Calcium-Ion/new-api (Go): a gateway relaying /mj to ``upstream``, with its own task copies."""

    name = "newapi"
    endpoints = frozenset(
        {"imagine", "change", "action", "modal", "describe", "blend", "video", "fetch", "list-by-condition"}
    )

    def __init__(self, sim: ProxySim, upstream: _Flavour) -> None:
        super().__init__(sim)
        self.upstream = upstream

    def authorized(self, headers: dict[str, str], secret: str | None) -> bool:
        return not secret or _newapi_key(headers) == secret.removeprefix("sk-")

    def unauthorized(self, headers: dict[str, str] | None = None) -> web.Response:
        message = "无效的令牌" if headers is None or _newapi_key(headers) else "未提供令牌"
        return _json_response({"error": {"message": message, "type": "new_api_error"}}, status=401)

    def error(self, description: str, code: int = 4, status: int = 400) -> web.Response:
        """new-api's own refusal: description + " " + result (empty), hence the trailing space."""
        return _json_response(
            {"code": code, "description": description + " ", "type": "upstream_error"}, status=status
        )

    def unknown_task(self) -> web.Response:
        return self.error("task_no_found")

    def status_for(self, code: int) -> int:
        return self.upstream.status_for(code)  # the upstream's status is relayed

    def http_error(self, status: int, request: web.Request) -> web.Response:
        return _json_response(
            {
                "error": {
                    "message": f"Invalid URL ({request.method} {request.path})",
                    "type": "invalid_request_error",
                    "param": "",
                    "code": "",
                }
            },
            status=status,
        )

    def bad_body(self, request: web.Request) -> web.Response:
        return self.error("bind_request_body_failed")

    def task_json(self, task: SimTask) -> dict[str, Any]:
        return self.upstream.task_json(task)

    def view(self, task_id: str) -> dict[str, Any] | None:
        """Its own copy, as of its last poll. While the task is not SUCCESS its imageUrl gets
        ``?rand=<UnixNano>`` anew on every read (relay/mjproxy_handler.go coverMidjourneyTaskDto,
        formerly relay/relay-mj.go), so the URL differs on each fetch and list."""
        copy = self.sim.gateway_tasks.get(task_id)
        if copy is None:
            return None
        view = dict(copy)
        if view["imageUrl"] and view["status"] != SUCCESS:
            view["imageUrl"] += f"?rand={self.sim._rand_ns()}"
        return view

    def after_read(self, task_ids: Iterable[str]) -> None:
        pass  # the upstream is read by new-api's own poll, not by the bot's fetch

    def openai_error(self, status: int, message: str) -> web.Response:
        """middleware/utils.go abortWithOpenAiMessage: the gateway's own refusals before relaying."""
        return _json_response(
            {"error": {"message": f"{message} (request id: {_newapi_request_id()})", "type": "new_api_error", "code": ""}},
            status=status,
        )

    def _model(self, kind: str, body: dict) -> tuple[str, str | None]:
        """The model new-api bills a submit as, and its normal action (middleware/distributor.go
        getModelRequest -> service/midjourney.go GetMjRequestModel / CoverPlusActionToNormalAction);
        raises _NewApiReject for a customId it cannot convert."""
        if kind == "action":
            action = _newapi_action(body.get("customId"))
        elif kind == "change":
            action = str(body.get("action") or "")
        else:
            action = {"imagine": "IMAGINE", "describe": "DESCRIBE", "blend": "BLEND", "modal": "MODAL",
                      "video": "VIDEO"}[kind]
        return "mj_" + action.lower(), action  # CovertMjpActionToModelName

    def _refusal(self, kind: str, body: dict) -> str | None:
        """What new-api checks itself before relaying (its own, possibly stale, copies)."""
        if kind == "imagine":
            prompt = body.get("prompt")
            return None if isinstance(prompt, str) and prompt.strip() else "prompt_is_required"
        if kind in ("describe", "blend"):
            return None  # the upstream checks the images
        task_id = body.get("taskId")
        if not task_id:
            # relay/mjproxy_handler.go: /submit/video without a taskId is relayed as it is.
            return None if kind == "video" else "task_id_is_required"
        if kind == "change":
            if not body.get("action"):
                return "action_is_required"
            if not body.get("index"):
                return "index_is_required"  # even for REROLL
        copy = self.sim.gateway_tasks.get(str(task_id))
        if copy is None:
            return "task_not_found"
        if kind != "modal" and copy["status"] != SUCCESS:
            return "task_status_not_success"
        return None

    async def submit(self, kind: str, request: web.Request, body: dict) -> web.Response:
        sim = self.sim
        # middleware/distributor.go runs first: a customId it cannot turn into an action (animate,
        # video_virtual_upscale, PicReader, BOOKMARK, ...) is a 400 before anything is relayed,
        # and so is a model the key may not use (403).
        try:
            model, action = self._model(kind, body)
        except _NewApiReject as reject:
            return self.openai_error(400, f"无效的请求，{reject.description}")  # distributor.invalid_request
        if model in sim.denied_models:
            return self.openai_error(403, f"该令牌无权访问模型 {model}")  # distributor.token_model_forbidden
        if kind in ("action", "modal", "video") and self.upstream.name == "novicezk":
            # Relayed to a server without that route: its 404 comes back as it was.
            return _spring_error(404, f"{API_PREFIX}/submit/{kind}")
        refusal = self._refusal(kind, body)
        if refusal is None and sim.quota_exhausted:
            refusal = "quota_not_enough"
        if refusal is not None:
            return self.error(refusal)
        relayed = dict(body)
        if not sim.gateway_notify:
            relayed.pop("notifyHook", None)  # new-api drops it unless its admin allows hooks
        outcome = sim._run_submit(kind, relayed, None)
        if isinstance(outcome, web.Response):
            return outcome  # relayed as it came (e.g. trueai's LogicException body, HTTP 200)
        if outcome.code in (1, 21, 22) and isinstance(outcome.result, str):
            sim._gateway_track(outcome.result)
        # relay/mjproxy_handler.go (formerly relay/relay-mj.go) rewrites "code":22 to "code":1
        # always, and "code":21 to "code":1 except for INPAINT and CUSTOM_ZOOM (those wait for
        # /submit/modal); description and properties (numberOfQueues) are relayed unchanged.
        code = outcome.code
        if code == 22 or (code == 21 and action not in ("INPAINT", "CUSTOM_ZOOM")):
            code = 1
        return self.upstream.submit_result(code, outcome.description, outcome.result, outcome.properties)


class _NewApiReject(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _newapi_action(custom_id: Any) -> str:
    """service/midjourney.go CoverPlusActionToNormalAction: the action new-api reads from a
    customId (the 2nd or, after "JOB", the 3rd "::" part); anything else is refused."""
    if not isinstance(custom_id, str) or not custom_id:
        raise _NewApiReject("custom_id_is_required")
    parts = custom_id.split("::")
    if len(parts) < 3:
        raise _NewApiReject(f"unknown_action:{custom_id}")  # Go would index out of range
    action = parts[2] if parts[1] == "JOB" else parts[1]  # "Job" (PicReader) is not "JOB"
    if not action:
        raise _NewApiReject("unknown_action")
    if "upsample" in action:  # U1-U4 and Upscale (Subtle/Creative) alike
        if len(parts) < 4 or not parts[3].lstrip("-").isdigit():
            raise _NewApiReject("index_parse_failed")
        return "UPSCALE"
    if "variation" in action:
        if action == "variation":
            if len(parts) < 4 or not parts[3].lstrip("-").isdigit():
                raise _NewApiReject("index_parse_failed")
            return "VARIATION"
        return {"low_variation": "LOW_VARIATION", "high_variation": "HIGH_VARIATION"}.get(action, "")
    if "pan" in action:
        return "PAN"
    if "reroll" in action:
        return "REROLL"
    known = {"Outpaint": "ZOOM", "CustomZoom": "CUSTOM_ZOOM", "Inpaint": "INPAINT"}
    if action in known:
        return known[action]
    raise _NewApiReject(f"unknown_action:{custom_id}")


def _newapi_request_id() -> str:
    """common.NewRequestId's shape: time string, nanoseconds, 8 random characters."""
    now = time.time_ns()
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return time.strftime("%Y%m%d%H%M%S") + str(now % 10**9) + "".join(random.choice(alphabet) for _ in range(8))


# router/web-router.go: every path no route claims gets the web UI's index.html with HTTP 200
# (except /v1, /api and /assets). A stand-in for the built dashboard page.
NEWAPI_INDEX_HTML = (
    '<!doctype html><html lang="zh"><head><meta charset="UTF-8" />'
    '<link rel="icon" href="/logo.png" /><meta name="viewport" content="width=device-width, initial-scale=1.0" />'
    '<meta name="description" content="OpenAI 接口聚合管理，支持多种渠道包括 Azure，可用于二次分发管理 key，仅单可执行文件，已打包好 Docker 镜像，一键部署，开箱即用" />'
    "<title>New API</title>"
    '<script type="module" crossorigin src="/assets/index.js"></script>'
    '<link rel="stylesheet" crossorigin href="/assets/index.css"></head>'
    '<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>'
)


_FLAVOURS: dict[str, type[_Flavour]] = {"novicezk": _Flavour, "trueai": _TrueaiFlavour, "newapi": _NewApiFlavour}


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
_THUMBNAIL_NAME = re.compile(r"(\d+)_([0-3])\.png")
_VIDEO_NAME = re.compile(r"(\d+)(?:_([0-3]))?\.mp4")


# --------------------------------------------------------------------------
# The simulator


_UNSET: Any = object()


class ProxySim:
    """An in-process Midjourney Proxy (novicezk, trueai or new-api) that tests can script.

    Options for the other flavours: ``upstream`` (new-api only: "novicezk" or "trueai",
    the server behind it), ``long_custom_ids`` (trueai buttons: a job hash long enough
    that some customIds pass Discord's 100 characters), ``remix`` (trueai: every action
    but an upscale waits for /submit/modal, like an account in Remix mode),
    ``gateway_poll_s`` (new-api: seconds between its polls of the upstream in poll and
    time modes; None: only gateway_poll()), ``gateway_notify`` (new-api passes the
    notifyHook of a submit on to the upstream; off, as by default in new-api),
    ``video`` (trueai's Setting.EnableVideo: Animate buttons and /submit/video; on),
    ``user_core_size`` / ``user_queue_size`` (trueai: the user's limits; a submit past
    them is refused with a LogicException body) and ``denied_models`` (new-api: model
    names such as "mj_blend" the key may not use: 403).
    """

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
        upstream: str | None = None,
        long_custom_ids: bool = False,
        remix: bool = False,
        gateway_poll_s: float | None = 1.0,
        gateway_notify: bool = False,
        video: bool = True,
        user_core_size: int | None = None,
        user_queue_size: int | None = None,
        denied_models: Iterable[str] = (),
    ) -> None:
        if flavour == "new-api":
            flavour = "newapi"
        if flavour not in _FLAVOURS:
            raise ValueError(f"unsupported flavour {flavour!r} (have: {', '.join(_FLAVOURS)})")
        if denied_models and flavour != "newapi":
            raise ValueError("denied_models is for flavour='newapi' only")
        if flavour == "newapi":
            upstream = upstream or "novicezk"
            if upstream not in UPSTREAMS:
                raise ValueError(f"new-api relays to one of {UPSTREAMS}, not {upstream!r}")
        elif upstream is not None:
            raise ValueError("upstream is for flavour='newapi' only")
        if gateway_poll_s is not None and gateway_poll_s <= 0:
            raise ValueError("gateway_poll_s must be positive (or None: only gateway_poll())")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "time" and step_s <= 0:
            raise ValueError("step_s must be positive in time mode")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1): a step can neither vanish nor go back in time")
        self.secret = secret
        self.flavour = flavour
        self.upstream = upstream  # new-api only: the server it relays to
        # The flavour answering HTTP, and the one whose tasks the sim holds (they differ for new-api).
        if flavour == "newapi":
            self._upstream: _Flavour = _FLAVOURS[upstream](self)
            self._flavour: _Flavour = _NewApiFlavour(self, self._upstream)
        else:
            self._flavour = self._upstream = _FLAVOURS[flavour](self)
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
        self._ids_rng = random.Random(seed)  # trueai job hashes and seeds, apart from the jitter's
        self.long_custom_ids = long_custom_ids
        self.remix = remix
        self.gateway_poll_s = gateway_poll_s
        self.gateway_notify = gateway_notify
        self.quota_exhausted = False  # new-api: refuse every submit with quota_not_enough
        # trueai: Setting.EnableVideo (Animate buttons under upscales, /submit/video).
        self.video = video
        # trueai: the user's CoreSize / QueueSize (Controllers/SubmitController.cs NewTask): with
        # that many tasks IN_PROGRESS (resp. NOT_START or SUBMITTED) a new submit is refused with
        # a LogicException ("并发数已达上限" / "队列数已达上限"); None = no limit.
        self.user_core_size = user_core_size
        self.user_queue_size = user_queue_size
        # new-api: models the key may not use (mj_imagine, mj_blend, mj_upscale, ...): 403.
        self.denied_models = set(denied_models)
        self._last_rand = 0
        self._videos: set[str] = set()  # ids whose final result is an .mp4

        # new-api: its copy of each task (the Task JSON it serves), refreshed only by its polls.
        self.gateway_tasks: dict[str, dict[str, Any]] = {}
        self.gateway_polls = 0  # polls done so far
        self._gateway_images: dict[str, str] = {}  # task id -> the upstream imageUrl it relays
        self._gateway_clock: asyncio.Task | None = None

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

    def speed_url(self, speed: str) -> str:
        """trueai's base URL for a speed: ``speed_url("relax")`` is ``http://127.0.0.1:<port>/mj-relax/mj``."""
        prefix = f"/mj-{speed.lower()}/mj"
        if prefix not in SPEED_PREFIXES:
            raise ValueError(f"unknown speed {speed!r}: fast, relax or turbo")
        return f"http://{self.host}:{self.port}{prefix}"

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
        if self.flavour == "newapi" and self.mode != "manual" and self.gateway_poll_s:
            self._gateway_clock = asyncio.create_task(self._run_gateway(), name="proxy-sim-gateway")

    async def stop(self) -> None:
        """Stop the clock, give up deliveries not yet made (recorded as "cancelled"), close."""
        for clock in (self._ticker, self._gateway_clock):
            if clock is not None:
                clock.cancel()
                try:
                    await clock
                except asyncio.CancelledError:
                    pass
        self._ticker = self._gateway_clock = None
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
        routes = {
            "imagine": ("POST", "/submit/imagine", self._submit),
            "change": ("POST", "/submit/change", self._submit),
            "action": ("POST", "/submit/action", self._submit),
            "modal": ("POST", "/submit/modal", self._submit),
            "describe": ("POST", "/submit/describe", self._submit),
            "blend": ("POST", "/submit/blend", self._submit),
            "video": ("POST", "/submit/video", self._submit),
            "fetch": ("GET", "/task/{id}/fetch", self._fetch),
            "list-by-condition": ("POST", "/task/list-by-condition", self._list_by_condition),
            "list": ("GET", "/task/list", self._list_all),
        }
        for prefix in self._flavour.prefixes:
            for name, (method, path, handler) in routes.items():
                if name in self._flavour.endpoints:
                    add = app.router.add_get if method == "GET" else app.router.add_post
                    add(prefix + path, handler)
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
        """Cancel a task now, as trueai can: CANCEL (terminal), failReason, progress kept."""
        task = self.tasks[task_id]
        task.status, task.fail_reason = CANCEL, reason
        self._save(task)
        return task

    def gateway_poll(self) -> list[str]:
        """new-api's poll of its upstream, now; returns the ids it read.

        Every copy not yet at progress "100%" is refreshed from the upstream task as it
        is now (copies of tasks the upstream forgot stay as they were). In poll mode the
        upstream tasks read then move one step, as after any read.
        """
        if self.flavour != "newapi":
            raise RuntimeError("only flavour='newapi' has a gateway poll")
        read = []
        for task_id, copy in self.gateway_tasks.items():
            task = self.tasks.get(task_id)
            if copy["progress"] != "100%" and task is not None:
                self._gateway_refresh(copy, task)
                read.append(task)
        self.gateway_polls += 1
        if self.mode == "poll":
            for task in read:
                self._auto_advance(task)
        self._notify()
        return [task.id for task in read]

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
        with ``description``/``properties``/``result``), ``logic`` (trueai, or new-api in
        front of it: HTTP 200 ``{"success": false, "code": -1, "message": description,
        "timestamp": "<.NET ticks>"}``, description defaulting to "并发数已达上限", as
        Filters/CustomLogicExceptionFilterAttribute.cs answers a LogicException on
        /submit/action, /modal, /describe, /blend). Scripted answers come before the auth
        check and the request has no other effect (except for delay).
        """
        _check_kind(kind)
        if kind == "logic" and (self.upstream or self.flavour) != "trueai":
            raise ValueError("kind='logic' is trueai's answer (flavour='trueai', or newapi over trueai)")
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
        """The result's URL: ``<id>.png``, or ``<id>.mp4`` for a video (trueai's VIDEO imageUrl)."""
        if task_id in self._videos:
            return self.video_url(task_id)
        return f"{self.base_url}/image/{task_id}.png"

    def video_url(self, task_id: str, i: int | None = None) -> str:
        """A video the sim serves: the task's own (``<id>.mp4``), or video ``i`` (0-3) of a batch."""
        return f"{self.base_url}/image/{task_id}.mp4" if i is None else f"{self.base_url}/image/{task_id}_{i}.mp4"

    def thumbnail_url(self, task_id: str, i: int = 0) -> str:
        return f"{self.base_url}/image/{task_id}_{i}.png"

    def video_bytes(self, task_id: str, i: int | None = None) -> bytes:
        if task_id not in self._actions:
            raise KeyError(task_id)
        return mp4_bytes(f"{task_id}:{'' if i is None else i}")

    def client_image_url(self, task_id: str) -> str:
        """The final image URL the bot is given: final_url(), or new-api's ``<base>/image/<id>``."""
        if self.flavour == "newapi":
            return f"{self.base_url}/image/{task_id}"
        return self.final_url(task_id)

    def preview_url(self, task_id: str, n: int = 1) -> str:
        return f"{self.base_url}/image/{task_id}-preview-{n}.png"

    def image_bytes(self, task_id: str) -> bytes:
        """The bytes served at the task's final image URL (grid, or one image for UPSCALE)."""
        kind = "upscale" if self._actions[task_id] in ("UPSCALE", "UPSCALE_HD") else "grid"
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
            await wait_event(self._changed, min(0.05, remaining))

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

    # ---- internals: notifyHook deliveries --------------------------------

    def _push(self, task: SimTask) -> None:
        """Queue a POST of the task as it is now to its hook (or the global one)."""
        url = task.notify_hook or self.notify_hook
        if not url:
            return
        push = _Push(task.id, url, self._upstream.task_json(task))  # the server holding it posts
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

    # ---- internals: submits (the upstream's task logic) -------------------

    def _run_submit(self, kind: str, body: dict, speed: str | None) -> _Outcome | web.Response:
        """A submit as the server holding the tasks (``_upstream``) handles it."""
        if kind == "imagine":
            return self._do_imagine(body, speed)
        if kind == "change":
            if self._upstream.name == "trueai":  # only reached through new-api
                return self._do_change_as_action(body)
            return self._do_change(body)
        if kind == "action":
            return self._do_action(body, speed)
        if kind == "describe":
            return self._do_describe(body, speed)
        if kind == "blend":
            return self._do_blend(body, speed)
        if kind == "video":
            return self._do_video(body, speed)
        return self._do_modal(body)

    def _do_describe(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        """/submit/describe: four prompts for one image, numbered 1️⃣-4️⃣ and separated by blank
        lines in ``properties.finalPrompt`` (and ``prompt``), as Midjourney writes them."""
        image = body.get("base64")
        if not _is_data_url(image):
            return _Outcome(4, "base64格式错误")
        limit = self._limit_refusal()
        if limit is not None:
            return _logic_error(limit)  # NewTask's LogicException: Describe has no try
        prompts = "\n\n".join(f"{mark} {text}" for mark, text in zip(DESCRIBE_MARKS, DESCRIBED, strict=True))
        task = self._new_task(action="DESCRIBE", prompt=prompts, prompt_en=prompts, description="/describe",
                              state=body.get("state"), notify_hook=body.get("notifyHook") or None,
                              mode=speed or "FAST")
        return self._admit(task)

    def _do_blend(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        """/submit/blend: 2 to 5 images, and a shape."""
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            return _Outcome(4, "base64List参数错误")
        if not all(_is_data_url(image) for image in images):
            return _Outcome(4, "base64格式错误")
        dimensions = body.get("dimensions") or "SQUARE"
        if dimensions not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            return _Outcome(4, "dimensions参数错误")
        limit = self._limit_refusal()
        if limit is not None:
            return _logic_error(limit)  # NewTask's LogicException: Blend has no try
        task = self._new_task(action="BLEND", prompt="", prompt_en="", description=f"/blend {len(images)} {dimensions}",
                              state=body.get("state"), notify_hook=body.get("notifyHook") or None,
                              mode=speed or "FAST")
        task.blend_dimensions = dimensions
        return self._admit(task)

    def _admit(self, task: SimTask) -> _Outcome:
        """Run the task or queue it, like novicezk's per-account executor.

        ``task`` is new, or a registered MODAL task whose /submit/modal came in.
        """
        queued = len(self._queued_ids)
        if len(self._running) < self.max_running and queued == 0:
            self._enter(task)
            self.advance(task.id)
            return _Outcome(1, "提交成功", task.id, {"discordInstanceId": DISCORD_INSTANCE_ID})
        if queued < self.max_queue:
            # novicezk counts only the tasks already waiting, and says code 1 when
            # that count is 0; the simulator always says 22 for a task that waits.
            self._enter(task)
            self._save(task)
            return _Outcome(
                22,
                f"排队中，前面还有{queued}个任务",
                task.id,
                {"numberOfQueues": queued, "discordInstanceId": DISCORD_INSTANCE_ID},
            )
        code, description = self._upstream.queue_full  # novicezk 23, trueai 9
        return _Outcome(code, description, None, {"discordInstanceId": DISCORD_INSTANCE_ID})

    def _enter(self, task: SimTask) -> None:
        if task.id not in self.tasks:
            self._register(task)
        task.status = NOT_START  # a MODAL task leaves its wait here

    def _banned_word(self, prompt: str) -> str | None:
        """The banned word as written in the prompt, matched as a whole word, any case."""
        for word in self.banned_words:
            match = re.search(rf"\b{re.escape(word)}\b", prompt, re.IGNORECASE)
            if match:
                return match.group(0)
        return None

    def _do_imagine(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _Outcome(4, "prompt不能为空")
        prompt = prompt.strip()
        trueai = self._upstream.name == "trueai"
        bot_type = body.get("botType") or "MID_JOURNEY"
        if trueai and bot_type not in BOT_TYPES:
            return _problem(400, {"$.botType": ["The JSON value could not be converted to BotType."]})
        timeline = None
        # novicezk checks banned words (on the translated prompt) before the images.
        banned = self._banned_word(prompt)
        if banned is not None:
            if not self._upstream.fails_banned_later:
                return _Outcome(24, "可能包含敏感词", None, {"promptEn": prompt, "bannedWord": banned})
            # trueai takes it; Midjourney then refuses the job.
            if self._next_timelines:
                self._next_timelines.pop(0)  # this task still uses up its scripted timeline
            timeline = (Step(SUBMITTED, "0%"), Step(FAILURE, "", fail_reason=f"Banned prompt detected: {banned}"))
        images = list(body.get("base64Array") or [])
        if body.get("base64"):
            images.append(body["base64"])
        if not all(_is_data_url(image) for image in images):
            return _Outcome(4, "base64格式错误")
        limit = self._limit_refusal()
        if limit is not None:
            return _Outcome(4, limit)  # Imagine catches the LogicException: a code 4 SubmitResultVO
        task = self._new_task(
            action="IMAGINE",
            prompt=prompt,
            prompt_en=prompt,
            description=_description("IMAGINE", prompt, None, None),
            timeline=timeline,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=speed or "FAST",
            bot_type=bot_type if trueai else "MID_JOURNEY",
        )
        return self._admit(task)

    def _do_change(self, body: dict) -> _Outcome:
        """novicezk's /submit/change."""
        parent_id = body.get("taskId")
        action = body.get("action")
        if not parent_id or not str(parent_id).strip():
            return _Outcome(4, "taskId不能为空")
        parent_id = str(parent_id)
        if action not in CHANGE_ACTIONS:
            return _Outcome(4, "action参数错误")
        index = None
        if action != "REROLL":
            index = _parse_index(body.get("index"))
            if index is None:
                return _Outcome(4, "index参数错误")
        parent = self.tasks.get(parent_id)
        if parent is None:
            return _Outcome(3, "关联任务不存在或已失效")
        if parent.status != SUCCESS:
            return _Outcome(4, "关联任务状态错误")
        if parent.action not in CHANGEABLE_PARENT_ACTIONS:
            return _Outcome(4, "关联任务不允许执行变化")
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

    _CHANGE_BUTTONS = {
        "UPSCALE": "MJ::JOB::upsample::{}::",
        "VARIATION": "MJ::JOB::variation::{}::",
        "REROLL": "MJ::JOB::reroll::0::",
    }

    def _do_change_as_action(self, body: dict) -> _Outcome:
        """new-api's /submit/change over trueai: the matching button of the parent, pressed."""
        parent = self.tasks.get(str(body.get("taskId")))
        if parent is None:
            return _Outcome(3, "关联任务不存在或已失效")
        action = body.get("action")
        if action not in self._CHANGE_BUTTONS:
            return _Outcome(4, "action参数错误")
        index = _parse_index(body.get("index"))
        if action != "REROLL" and index is None:
            return _Outcome(4, "index参数错误")
        prefix = self._CHANGE_BUTTONS[action].format(index)
        custom_id = next((b["customId"] for b in parent.buttons if b["customId"].startswith(prefix)), None)
        if custom_id is None:
            return _Outcome(4, "关联任务状态错误")
        return self._do_action({**body, "customId": custom_id}, None)

    def _do_action(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        """trueai's /submit/action: press one of the task's buttons (Controllers/SubmitController.cs
        Action, Services/TaskService.cs SubmitAction)."""
        task_id, custom_id = body.get("taskId"), body.get("customId")
        if not task_id or not str(task_id).strip() or not isinstance(custom_id, str) or not custom_id.strip():
            return _Outcome(4, "参数错误")
        parent = self.tasks.get(str(task_id).strip())
        if parent is None:
            return _Outcome(3, "关联任务不存在或已失效")
        parsed = _action_of(custom_id)
        if parsed is None or not any(b["customId"] == custom_id for b in parent.buttons):
            return _Outcome(4, "无效的customId")
        limit = self._limit_refusal()
        if limit is not None:  # NewTask's LogicException: no try around it in Action
            return _logic_error(limit)
        action, index = parsed
        video = False
        batch_size = 4
        if custom_id.startswith("MJ::JOB::reroll::"):
            # SubmitController.Action: rerolling an upscale submits the prompt again (IMAGINE); a
            # video, an HD upscale keep their action. (The sim keeps REROLL for grids, as before.)
            action = {"UPSCALE": "IMAGINE", "VIDEO": "VIDEO", "UPSCALE_HD": "UPSCALE_HD"}.get(parent.action, action)
            video = action == "VIDEO"
        if action == "VIDEO":
            video = True
            batch_size = _video_batch_size(parent.final_prompt or parent.prompt)  # TaskInfo.GetVideoBatchSize
        elif custom_id.startswith("MJ::JOB::video_virtual_upscale::"):
            video = True  # one video of the batch, action UPSCALE, an .mp4 (TaskService.cs)
        inpaint = custom_id.startswith("MJ::Inpaint::")
        task = self._new_task(
            action=action,
            prompt="" if inpaint else parent.prompt,  # Vary (Region) clears the prompt
            prompt_en="" if inpaint else parent.prompt_en,
            description=_description(action, parent.prompt, parent.id, index),
            final_prompt="" if inpaint else parent.final_prompt,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            parent_id=parent.id,
            index=index,
            mode=speed or parent.mode,
            bot_type=parent.bot_type,
            custom_id=custom_id,
            video=video,
            batch_size=batch_size,
        )
        # Custom Zoom and Vary (Region) always wait for /submit/modal (a prompt; a mask for the
        # region), answering 21 with remix true (TaskService.cs SubmitAction); in Remix mode
        # every action but an upscale does too.
        remix = self.remix and action not in ("UPSCALE", "UPSCALE_HD")
        if custom_id.startswith("MJ::CustomZoom::") or inpaint or remix:
            self._register(task)
            task.status = MODAL
            if custom_id.startswith("MJ::CustomZoom::"):
                task.description = _WINDOW_WAIT
            self._save(task)
            return _Outcome(
                21,
                _WINDOW_WAIT,
                task.id,
                {"finalPrompt": task.prompt_en, "remix": True, "discordInstanceId": DISCORD_INSTANCE_ID},
            )
        return self._admit(task)

    def _do_modal(self, body: dict) -> _Outcome:
        """trueai's /submit/modal: the prompt of a MODAL task, which then runs."""
        task_id = body.get("taskId")
        if not task_id or not str(task_id).strip():
            return _Outcome(4, "参数错误")
        task = self.tasks.get(str(task_id).strip())
        if task is None:
            return _Outcome(3, "关联任务不存在或已失效")
        if not task.is_modal:
            return _Outcome(4, "任务状态错误")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            # Controllers/SubmitController.cs Modal: no prompt -> the parent's (else the task's own).
            parent = self.tasks.get(task.parent_id or "")
            prompt = (parent.prompt or parent.final_prompt) if parent is not None else task.prompt
        if not prompt or not prompt.strip():
            return _Outcome(4, "prompt不能为空")
        task.prompt = task.prompt_en = task.final_prompt = prompt.strip()
        if task.custom_id and task.custom_id.startswith("MJ::Inpaint::"):
            task.mask = _is_data_url(body.get("maskBase64"))
            if not task.mask:
                # DiscordService.cs InpaintAsync posts the job without a mask; Discord refuses it,
                # and the task fails with "提交失败".
                task.timeline = (Step(SUBMITTED, "0%"), Step(FAILURE, "", fail_reason="提交失败"))
        return self._admit(task)

    def _do_video(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        """trueai's /submit/video (Controllers/SubmitController.cs Video, Dto/SubmitVideoDTO.cs):
        prompt, image / endImage (URL or data URL), motion low|high, loop, batchSize 1|2|4, or
        action "extend" + taskId + index (0-3) to extend a video of a batch."""
        if not self.video:
            return _Outcome(4, "视频功能未启用")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _Outcome(4, "Prompt 不能为空")
        for key in ("image", "endImage"):
            value = body.get(key)
            if value and not (isinstance(value, str) and (value.startswith("http") or _is_data_url(value))):
                return _Outcome(4, "base64格式错误")
        parent = None
        task_id = body.get("taskId")
        if task_id:
            if body.get("action") != "extend":
                return _Outcome(4, "任务类型错误")
            parent = self.tasks.get(str(task_id))
            if parent is None:
                return _Outcome(3, "关联任务不存在或已失效")
            if parent.status != SUCCESS:
                return _Outcome(4, "关联任务状态错误")
        limit = self._limit_refusal()
        if limit is not None:
            return _logic_error(limit)
        batch_size = body.get("batchSize")
        if batch_size not in (1, 2, 4):
            batch_size = 4
        motion = str(body.get("motion") or "low").lower()
        prompt = prompt.strip()
        task = self._new_task(
            action="VIDEO",
            prompt=prompt,
            prompt_en=prompt,
            description=f"/video {prompt}",
            final_prompt=f"{prompt} --motion {motion} --video 1" + (" --loop" if body.get("loop") else ""),
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            parent_id=parent.id if parent is not None else None,
            mode=speed or (parent.mode if parent is not None else "FAST"),
            video=True,
            batch_size=batch_size,
        )
        return self._admit(task)

    def _limit_refusal(self) -> str | None:
        """trueai NewTask's user limits (Controllers/SubmitController.cs): the LogicException text."""
        if self._upstream.name != "trueai":
            return None
        if self.user_core_size:
            running = sum(1 for task_id in self._running if self.tasks[task_id].status == IN_PROGRESS)
            if running >= self.user_core_size:
                return "并发数已达上限"
        if self.user_queue_size:
            waiting = len(self._queued_ids) + sum(
                1 for task_id in self._running if self.tasks[task_id].status == SUBMITTED
            )
            if waiting >= self.user_queue_size:
                return "队列数已达上限"
        return None

    def _job_hash(self) -> str:
        """The <hash> of a task's buttons: a uuid (36 characters), or 80 with long_custom_ids."""
        job_hash = str(uuid.UUID(int=self._ids_rng.getrandbits(128), version=4))
        if self.long_custom_ids:
            job_hash += "-" + "".join(self._ids_rng.choice("0123456789abcdef") for _ in range(43))
        return job_hash

    # ---- internals: new-api's copies ----------------------------------------

    def _gateway_track(self, task_id: str) -> None:
        """new-api records a task it relayed: status "" and "0%" until its first poll."""
        task = self.tasks.get(task_id)
        if task is None or task_id in self.gateway_tasks:
            return  # a /submit/modal answers with the id new-api already holds
        self.gateway_tasks[task_id] = {
            "id": task_id,
            "action": task.action,
            "customId": task.custom_id or "",
            "botType": "",
            "prompt": task.prompt,
            "promptEn": "",
            "description": "",
            "state": task.state or "",
            "submitTime": _now_ms(),
            "startTime": 0,
            "finishTime": 0,
            "imageUrl": "",
            "videoUrl": "",
            "videoUrls": None,
            "status": "",
            "progress": "0%",
            "failReason": "",
            "buttons": None,
            "maskBase64": "",
            "properties": None,
        }
        self._gateway_images[task_id] = ""
        self._notify()

    def _gateway_refresh(self, copy: dict[str, Any], task: SimTask) -> None:
        """What new-api's poll copies from the upstream's Task (Go: nulls become "" and 0)."""
        upstream = self._upstream.task_json(task)
        for key, empty in (
            ("status", ""), ("progress", ""), ("promptEn", ""), ("state", ""), ("failReason", ""),
            ("submitTime", 0), ("startTime", 0), ("finishTime", 0),
        ):
            copy[key] = upstream.get(key) or empty
        properties = upstream.get("properties")
        if properties is not None:  # new-api keeps only these two
            copy["properties"] = {
                "finalPrompt": properties.get("finalPrompt") or "",
                "finalZhPrompt": properties.get("finalZhPrompt") or "",
            }
        if upstream.get("buttons") is not None:
            copy["buttons"] = [dict(button) for button in upstream["buttons"]]
        if upstream.get("videoUrl"):
            copy["videoUrl"] = upstream["videoUrl"]
        if upstream.get("videoUrls"):
            copy["videoUrls"] = [{"url": item["url"]} for item in upstream["videoUrls"]]  # dto.ImgUrls
        raw = upstream.get("imageUrl") or ""
        self._gateway_images[task.id] = raw
        copy["imageUrl"] = f"{self.base_url}/image/{task.id}" if raw else ""
        if copy["failReason"] or copy["status"] == FAILURE:
            copy["progress"] = "100%"  # and it is never polled again

    def _rand_ns(self) -> int:
        """time.Now().UnixNano(), made strictly increasing so two reads never share one."""
        self._last_rand = max(time.time_ns(), self._last_rand + 1)
        return self._last_rand

    async def _run_gateway(self) -> None:
        while True:
            await asyncio.sleep(self.gateway_poll_s)
            self.gateway_poll()

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
            prefix=_prefix_of(request.path),
        )
        self.requests.append(record)
        self._notify()

        failure = self._take_failure(request.path)
        if failure is not None:
            if not failure.kind.startswith("delay:"):
                return self._failure_response(failure, request.path)
            if await self._delay(float(failure.kind.split(":", 1)[1])):
                return web.Response(status=503)  # shutting down: the client is gone anyway

        # new-api: a path no route claims (or a wrong method) reaches gin's NoRoute, which answers
        # the web UI's index.html with 200 and no key check (router/web-router.go).
        if (
            self.flavour == "newapi"
            and request.match_info.http_exception is not None
            and not request.path.startswith(("/v1", "/api", "/assets"))
        ):
            return web.Response(
                status=200, text=NEWAPI_INDEX_HTML, content_type="text/html", charset="utf-8",
                headers={"Cache-Control": "no-cache"},
            )
        # Images stand in for CDN links, which need no secret.
        if not request.path.startswith(API_PREFIX + "/image/"):
            if not self._flavour.authorized(record.headers, self.secret):
                return self._flavour.unauthorized(record.headers)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # no route, wrong method: Spring's error body (novicezk)
            if exc.status < 400:
                raise
            return self._flavour.http_error(exc.status, request)

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
        return await wait_event(self._closing, seconds)

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
            return self._flavour.unauthorized()
        if kind == "logic":  # trueai (also relayed as is by new-api in front of it)
            return _logic_error(failure.description or "并发数已达上限")
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

    async def _submit(self, request: web.Request) -> web.Response:
        """POST /submit/<kind>: the flavour checks and renders, _run_submit does the work."""
        body = await self._json_object(request)
        if body is None:
            return self._flavour.bad_body(request)
        kind = request.path.rsplit("/", 1)[-1]  # imagine, change, action, modal
        return await self._flavour.submit(kind, request, body)

    async def _fetch(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        view = self._flavour.view(task_id)
        if view is None:
            return self._flavour.unknown_task()
        response = _json_response(view)
        self._flavour.after_read([task_id])  # after serialising: the caller sees the old state
        return response

    async def _list_all(self, request: web.Request) -> web.Response:
        """GET /task/list: every task it still holds, newest first."""
        return _json_response([self._flavour.task_json(task) for task in reversed(self.tasks.values())])

    async def _list_by_condition(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        if body is None:
            return self._flavour.bad_body(request)
        ids = dict.fromkeys(str(i) for i in body.get("ids") or [])  # dedupe, keep order
        found = {i: view for i in ids if (view := self._flavour.view(i)) is not None}
        response = _json_response(list(found.values()))
        self._flavour.after_read(found)
        return response

    async def _image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.flavour == "newapi" and name.isdigit():
            return self._gateway_image(name)
        found = self._media_for(name)
        if found is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    def _image_for(self, name: str) -> bytes | None:
        """The bytes of ``<id>.png``, ``<id>-preview-<n>.png`` (or any served media); None if none."""
        found = self._media_for(name)
        return None if found is None else found[0]

    def _media_for(self, name: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of an image, a video thumbnail ``<id>_<i>.png`` or a video
        ``<id>.mp4`` / ``<id>_<i>.mp4``; None if the sim never made that task."""
        match = _IMAGE_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            task_id, preview = match.group(1), match.group(2)
            data = self.preview_bytes(task_id, int(preview)) if preview else self.image_bytes(task_id)
            return data, "image/png"
        match = _THUMBNAIL_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            return _render(match.group(1), "preview", 100 + int(match.group(2))), "image/png"
        match = _VIDEO_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._videos:
            index = match.group(2)
            return self.video_bytes(match.group(1), None if index is None else int(index)), "video/mp4"
        return None

    def _gateway_image(self, task_id: str) -> web.Response:
        """new-api's /mj/image/{id}: relays the upstream image its copy points at (no auth)."""
        if task_id not in self.gateway_tasks:
            return _json_response({"error": "midjourney_task_not_found"}, status=400)
        raw = self._gateway_images.get(task_id) or ""
        if not raw:
            return _json_response({"error": "image_url_not_found"}, status=404)
        prefix = self.base_url + "/image/"
        found = self._media_for(raw[len(prefix):]) if raw.startswith(prefix) else None
        if found is None:
            return _json_response({"error": f"fetch image failed: {raw}"}, status=502)
        data, content_type = found  # new-api relays the upstream's Content-Type (an .mp4 too)
        return web.Response(body=data, content_type=content_type)


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
    parser = argparse.ArgumentParser(description="Serve a simulated Midjourney Proxy until interrupted.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--flavour", choices=FLAVOURS, default="novicezk")
    parser.add_argument("--upstream", choices=UPSTREAMS, default=None, help="newapi: the server behind it")
    parser.add_argument("--secret", default=None, help="require this secret (in the flavour's auth header)")
    parser.add_argument("--long-custom-ids", action="store_true", help="trueai: customIds over 100 characters")
    parser.add_argument("--remix", action="store_true", help="trueai: actions wait for /submit/modal")
    parser.add_argument("--no-video", action="store_true", help="trueai: video off (no Animate, no /submit/video)")
    parser.add_argument("--user-core-size", type=int, default=None, help="trueai: IN_PROGRESS tasks allowed")
    parser.add_argument("--user-queue-size", type=int, default=None, help="trueai: waiting tasks allowed")
    parser.add_argument("--denied-model", action="append", default=[], help="newapi: model the key may not use")
    parser.add_argument("--gateway-poll-s", type=float, default=1.0, help="newapi: seconds between its polls")
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
            flavour=args.flavour,
            upstream=args.upstream,
            long_custom_ids=args.long_custom_ids,
            remix=args.remix,
            video=not args.no_video,
            user_core_size=args.user_core_size,
            user_queue_size=args.user_queue_size,
            denied_models=args.denied_model,
            gateway_poll_s=args.gateway_poll_s,
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
            flavour = sim.flavour + (f" over {sim.upstream}" if sim.upstream else "")
            print(f"Midjourney Proxy simulator ({flavour}, {sim.mode} mode) at {sim.base_url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
