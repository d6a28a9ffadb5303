"""Server flavours: what differs between novicezk (``_Flavour``), trueai and new-api (auth,
routes, answers and task JSON on the wire)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .buttons import (
    _grid_buttons,
    _upscale_buttons,
    _upscale_hd_buttons,
    _version,
    _video_batch_size,
    _video_buttons,
    _video_extend_buttons,
)
from .modes import settle_mode
from .newapi_rules import SUBMIT_ACTIONS, NewApiReject, newapi_action, newapi_key, newapi_request_id
from .shorten import finish_shorten
from .tasks import SimTask
from .timeline import API_PREFIX, GRID_ACTIONS, SPEED_PREFIXES, SUCCESS
from .trueai_input import body_error
from .wire import _json_response, _logic_error, _Outcome, _speed_of, _spring_error

if TYPE_CHECKING:
    from .server import ProxySim


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
    max_body = 256 * 1024 * 1024  # request bodies the sim reads (Spring and gin set no limit on JSON)

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
        self,
        code: int,
        description: str,
        result: Any = None,
        properties: dict | None = None,
        status: int | None = None,
    ) -> web.Response:
        return _json_response(
            {"code": code, "description": description, "result": result, "properties": properties or {}},
            status=self.status_for(code) if status is None else status,
        )

    def render(self, outcome: _Outcome | web.Response) -> web.Response:
        if isinstance(outcome, web.Response):
            return outcome
        return self.submit_result(
            outcome.code, outcome.description, outcome.result, outcome.properties, outcome.http_status
        )

    def http_error(self, status: int, request: web.Request) -> web.Response:
        return _spring_error(status, request.path)  # no route, wrong method

    def bad_body(self, request: web.Request, raw: bytes = b"") -> web.Response:
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
        raw = await request.read()  # cached by aiohttp: trueai's binding errors point into it
        return self.render(self.sim._run_submit(kind, body, _speed_of(request.path), raw))

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


def _lists_its_images(task: SimTask) -> bool:
    """Models/TaskInfo.cs Success: an IMAGINE, or a task whose buttons include U1-U4."""
    return task.action == "IMAGINE" or any("MJ::JOB::upsample::" in b["customId"] for b in task.buttons)


class _TrueaiFlavour(_Flavour):
    """trueai-org/midjourney-proxy (C#, ASP.NET Core)."""

    name = "trueai"
    prefixes = (API_PREFIX, *SPEED_PREFIXES)
    _submits = ("imagine", "action", "modal", "describe", "blend", "video", "upload-discord-images", "shorten")
    endpoints = frozenset((*_submits, "fetch", "list-by-condition", "list", "cancel", "image-seed"))
    # Kestrel's MaxRequestBodySize: 30,000,000 bytes unless KESTREL_MAX_REQUEST_BODY_SIZE (Program.cs)
    # says otherwise; over it, 413 with an empty body.
    max_body = 30_000_000
    # Services/DiscordService.cs RedisEnqueue: code 9 (ReturnCode.FAILURE) and this text.
    queue_full = (9, "提交失败，队列已满，请稍后重试")
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

    def bad_body(self, request: web.Request, raw: bytes = b"") -> web.Response:
        # Program.cs InvalidModelStateResponseFactory: HTTP 200 Result.Fail(System.Text.Json's error).
        return _logic_error(body_error(request.path.rsplit("/", 1)[-1], raw))

    def task_json(self, task: SimTask) -> dict[str, Any]:
        data = super().task_json(task)
        data.update(
            buttons=[dict(button) for button in task.buttons],
            parentId=task.parent_id,
            seed=task.seed,
            mode=task.mode,
            requestMode=task.request_mode,
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
                items = [
                    {"url": sim.video_url(task.id, i), "thumbnail": sim.thumbnail_url(task.id, i)}
                    for i in range(task.batch_size)
                ]
            else:  # one upscaled video
                items = [{"url": task.image_url, "thumbnail": sim.thumbnail_url(task.id, 0)}]
            data["videoUrls"] = items
            data["imageUrls"] = [dict(item) for item in items]
        elif task.status == SUCCESS and self.sim.image_urls and _lists_its_images(task):
            # Models/TaskInfo.cs Success: with Setting.EnableFillOfficialCdn (official and YouChuan
            # accounts fill them too) a grid lists its images alone, {url, thumbnail}, as many as
            # GetVideoBatchSize says (--bs N, else 4): cdn.midjourney.com/<job>/0_<i>.png.
            sim = self.sim
            count = _video_batch_size(task.final_prompt or task.prompt_en or task.prompt)
            data["imageUrls"] = [
                {"url": sim.grid_image_url(task.id, i), "thumbnail": sim.grid_thumbnail_url(task.id, i)}
                for i in range(count)
            ]
        return data

    def on_save(self, task: SimTask) -> None:
        if task.action == "SHORTEN":
            task.image_url = None  # its replies carry no image (shorten.py)
        if task.status != SUCCESS:
            task.buttons = []  # none while running, waiting, failed or cancelled
            task.content_type = None
            return
        settle_mode(task)  # Models/TaskInfo.cs SuccessUpdate (modes.py)
        if task.action == "SHORTEN":
            finish_shorten(task)  # the analysis, its buttons, no image, no seed
            settle_mode(task)  # the analysis is now the final prompt
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


class _NewApiFlavour(_Flavour):
    """Calcium-Ion/new-api (Go): a gateway relaying /mj to ``upstream``, with its own task copies."""

    name = "newapi"
    # router/relay-router.go registerMjRouterGroup, under /mj and /:mode/mj (the prefix is stripped
    # before relaying: relay/mjproxy_handler.go getMjRequestPath); its /submit/edits,
    # /submit/simple-change and /insight-face/swap are not simulated.
    prefixes = (API_PREFIX, *SPEED_PREFIXES)
    _submits = ("change", *_TrueaiFlavour._submits)  # trueai's, plus /submit/change
    endpoints = frozenset((*_submits, "fetch", "list-by-condition", "image-seed"))

    def __init__(self, sim: ProxySim, upstream: _Flavour) -> None:
        super().__init__(sim)
        self.upstream = upstream

    def authorized(self, headers: dict[str, str], secret: str | None) -> bool:
        return not secret or newapi_key(headers) == secret.removeprefix("sk-")

    def unauthorized(self, headers: dict[str, str] | None = None) -> web.Response:
        message = "无效的令牌" if headers is None or newapi_key(headers) else "未提供令牌"
        return _json_response({"error": {"message": message, "type": "new_api_error"}}, status=401)

    def error(self, description: str, code: int = 4, status: int = 400) -> web.Response:
        """new-api's own refusal: description + " " + result (empty), hence the trailing space."""
        return _json_response({"code": code, "description": description + " ", "type": "upstream_error"}, status=status)

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

    def bad_body(self, request: web.Request, raw: bytes = b"") -> web.Response:
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
            {
                "error": {
                    "message": f"{message} (request id: {newapi_request_id()})",
                    "type": "new_api_error",
                    "code": "",
                }
            },
            status=status,
        )

    def _model(self, kind: str, body: dict) -> tuple[str, str | None]:
        """The model new-api bills a submit as, and its normal action (middleware/distributor.go
        getModelRequest -> service/midjourney.go GetMjRequestModel / CoverPlusActionToNormalAction);
        raises _NewApiReject for a customId it cannot convert."""
        if kind == "action":
            action = newapi_action(body.get("customId"))
        elif kind == "change":
            action = str(body.get("action") or "")
        else:
            action = SUBMIT_ACTIONS[kind]
        return "mj_" + action.lower(), action  # CovertMjpActionToModelName

    def _refusal(self, kind: str, body: dict) -> str | None:
        """What new-api checks itself before relaying (its own, possibly stale, copies)."""
        if kind == "imagine":
            prompt = body.get("prompt")
            return None if isinstance(prompt, str) and prompt.strip() else "prompt_is_required"
        if kind in ("describe", "blend", "upload-discord-images", "shorten"):
            return None  # the upstream checks the images (and a shorten's prompt: nothing checks it)
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
        except NewApiReject as reject:
            return self.openai_error(400, f"无效的请求，{reject.description}")  # distributor.invalid_request
        if model in sim.denied_models:
            return self.openai_error(403, f"该令牌无权访问模型 {model}")  # distributor.token_model_forbidden
        if (
            kind in ("action", "modal", "video", "upload-discord-images", "shorten")
            and self.upstream.name == "novicezk"
        ):
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
        # An upload's list of URLs does not fit new-api's MidjourneyResponse (result is a string):
        # encoding/json still fills code and description, the list is read as a
        # MidjourneyUploadResponse (service/midjourney.go DoMidjourneyHttpRequest), the call is
        # billed as mj_upload with a finished record of no id, and the body goes back unchanged.
        return self.upstream.submit_result(
            code, outcome.description, outcome.result, outcome.properties, outcome.http_status
        )


_FLAVOURS: dict[str, type[_Flavour]] = {"novicezk": _Flavour, "trueai": _TrueaiFlavour, "newapi": _NewApiFlavour}
