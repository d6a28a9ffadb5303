"""``ProxySim``: construction, lifecycle (start, stop, going down) and inspection.
The task life cycle, scripting of task state and time mode, submits (videos, uploads),
deliveries, failures, new-api's copies, HTTP handlers and media are mixins from the modules
beside it."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from bot.core.background import wait_event

from .actions import _ActionMixin
from .delivery import _DeliveryMixin, _Push, _PushFault
from .failures import _FailureMixin, _ScriptedFailure
from .flavours import _FLAVOURS, _Flavour, _NewApiFlavour
from .gateway import _GatewayMixin
from .handlers import _HttpMixin
from .life_cycle import _LifeCycleMixin
from .media import _MediaMixin
from .scripting import _ScriptingMixin
from .shorten import _ShortenMixin
from .submits import _SubmitMixin
from .task_routes import _TaskRoutesMixin
from .tasks import Delivery, RecordedRequest, SimTask
from .timeline import (
    API_PREFIX,
    DEFAULT_TIMELINE,
    MODES,
    SPEED_PREFIXES,
    UPSTREAMS,
    Step,
    _as_timeline,
)
from .uploads import _UploadMixin
from .videos import _VideoMixin

_UNSET: Any = object()


class ProxySim(
    _LifeCycleMixin,
    _ScriptingMixin,
    _SubmitMixin,
    _ActionMixin,
    _ShortenMixin,
    _TaskRoutesMixin,
    _VideoMixin,
    _UploadMixin,
    _DeliveryMixin,
    _FailureMixin,
    _GatewayMixin,
    _HttpMixin,
    _MediaMixin,
):
    """An in-process Midjourney Proxy (novicezk, trueai or new-api) that tests can script.

    Options for the other flavours: ``upstream`` (new-api only: "novicezk" or "trueai",
    the server behind it), ``long_custom_ids`` (trueai buttons: a job hash long enough
    that some customIds pass Discord's 100 characters), ``remix`` (trueai: the account's
    Remix is on: a pan, a variation, a video or a reroll waits for /submit/modal, code 21;
    off, ``"enableRemix": true`` in /submit/action is refused), ``remix_auto_submit`` (trueai:
    the account's RemixAutoSubmit: with ``remix`` those actions run at once with the parent's
    prompt, unless the action says ``"enableRemix": true``; actions.py), ``admin`` (trueai: the
    secret is an admin's token, as needed by ``POST /task/{id}/cancel``; False: every cancel is
    refused with HTTP 400; on), ``dead_links`` (trueai: describe links Midjourney cannot read:
    such a DESCRIBE fails with failReason ``"Invalid link, <link>"``; the sim's own URLs that
    serve no image count as dead too; task_routes.py),
    ``gateway_poll_s`` (new-api: seconds between its polls of the upstream in poll and
    time modes; None: only gateway_poll()), ``gateway_notify`` (new-api passes the
    notifyHook of a submit on to the upstream; off, as by default in new-api),
    ``video`` (trueai's Setting.EnableVideo: Animate buttons and /submit/video; on),
    ``user_core_size`` / ``user_queue_size`` (trueai: the user's limits; a submit past
    them is refused with a LogicException body), ``image_urls`` (trueai: a finished grid
    lists its images alone in ``imageUrls``, ``[{url, thumbnail}]``, as with
    Setting.EnableFillOfficialCdn or an official/YouChuan account; each served by the sim,
    see grid_image_url() / grid_image_bytes(); off, as on a Discord account with the default
    settings: ``null``) and ``denied_models`` (new-api: model names such as "mj_blend" the key
    may not use: 403).

    Final images: ``final_image_size`` pads every final PNG to that many bytes (a tEXt
    chunk: the pixels stay 64x64); ``final_image_pixels=(width, height)`` makes an upscale's
    final image (UPSCALE, UPSCALE_HD) a photo-like PNG of that many real pixels, smooth
    gradients under ±6 noise, stored uncompressed: (4096, 2048) is ~25 MB, and a
    high-quality JPEG or WebP of it a megabyte or two (made with Pillow once per task, in
    about half a second). ``cut_media(task_id, times)`` cuts downloads of a task's final
    media halfway. ``uploads`` lists every image trueai stored, ``(url, bytes,
    content_type)``: /submit/upload-discord-images, and the images of an imagine, a video or
    a describe.

    trueai's extra routes: ``POST /submit/shorten`` (a SHORTEN task; its shorter prompts are
    ``shorten.shortened_prompts(prompt)``), ``POST /task/{id}/cancel`` and ``GET
    /task/{id}/image-seed`` (the seed is ``sim.tasks[id].seed``, set when a task succeeds;
    deterministic with ``seed=``); new-api relays shorten and image-seed. A task's
    ``request_mode`` (trueai's ``requestMode``) is the mode asked for, ``mode`` the one it
    runs and ended in; the path a request came in on is ``RecordedRequest.prefix``.
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
        final_image_pixels: tuple[int, int] | None = None,
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
        image_urls: bool = False,
        denied_models: Iterable[str] = (),
        remix_auto_submit: bool = False,
        admin: bool = True,
        dead_links: Iterable[str] = (),
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
        if final_image_pixels is not None:
            final_image_pixels = tuple(final_image_pixels)
            if len(final_image_pixels) != 2 or min(final_image_pixels) < 1:
                raise ValueError(f"final_image_pixels is (width, height), not {final_image_pixels!r}")
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
        self.final_image_pixels = final_image_pixels
        self._photos: dict[str, bytes] = {}  # task id -> its final photo (final_image_pixels)
        self._cuts: dict[str, int] = {}  # task id -> downloads of its final media still to cut
        # trueai's stored images: (url, bytes, content type), and "<day>/<name>" -> (bytes, type).
        self.uploads: list[tuple[str, bytes, str]] = []
        self._stored: dict[str, tuple[bytes, str]] = {}
        self.notify_hook = notify_hook  # novicezk's global mj.notify-hook: for tasks without one
        self.notify_timeout_s = notify_timeout_s
        self.jitter = jitter
        self._rng = random.Random(seed)
        self._ids_rng = random.Random(seed)  # trueai job hashes and seeds, apart from the jitter's
        self.long_custom_ids = long_custom_ids
        self.remix = remix
        self.remix_auto_submit = remix_auto_submit  # trueai: the account's RemixAutoSubmit
        self.admin = admin  # trueai: the secret is an admin's token (cancel needs one)
        self.dead_links = set(dead_links)  # trueai: describe links Midjourney cannot read
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
        self.image_urls = image_urls  # trueai: imageUrls of finished grids
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
        app = web.Application(middlewares=[self._middleware], client_max_size=self._flavour.max_body)
        routes = {
            "imagine": ("POST", "/submit/imagine", self._submit),
            "change": ("POST", "/submit/change", self._submit),
            "action": ("POST", "/submit/action", self._submit),
            "modal": ("POST", "/submit/modal", self._submit),
            "describe": ("POST", "/submit/describe", self._submit),
            "blend": ("POST", "/submit/blend", self._submit),
            "video": ("POST", "/submit/video", self._submit),
            "shorten": ("POST", "/submit/shorten", self._submit),
            "upload-discord-images": ("POST", "/submit/upload-discord-images", self._submit),
            "fetch": ("GET", "/task/{id}/fetch", self._fetch),
            "list-by-condition": ("POST", "/task/list-by-condition", self._list_by_condition),
            "list": ("GET", "/task/list", self._list_all),
            "cancel": ("POST", "/task/{id}/cancel", self._cancel),
            "image-seed": ("GET", "/task/{id}/image-seed", self._image_seed),
        }
        for prefix in self._flavour.prefixes:
            for name, (method, path, handler) in routes.items():
                if name in self._flavour.endpoints:
                    add = app.router.add_get if method == "GET" else app.router.add_post
                    add(prefix + path, handler)
        app.router.add_get(API_PREFIX + "/image/{name}", self._image)
        app.router.add_get(API_PREFIX + "/image/attachments/{day}/{name}", self._attachment)
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

    # ---- inspection -----------------------------------------------------

    def count(self, path_suffix: str = "", method: str | None = None) -> int:
        """How many requests (any outcome) had a path ending with ``path_suffix``."""
        return sum(
            1 for r in self.requests if r.path.endswith(path_suffix) and (method is None or r.method == method.upper())
        )

    def last_request(self, path_suffix: str = "") -> RecordedRequest | None:
        for record in reversed(self.requests):
            if record.path.endswith(path_suffix):
                return record
        return None

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
