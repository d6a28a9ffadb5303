"""trueai's task routes beyond fetch and list: ``POST /task/{id}/cancel`` and
``GET /task/{id}/image-seed`` (and new-api's relay of the latter), plus which describe links the
sim's Midjourney can read.

Facts from trueai-org/midjourney-proxy (v11.10.x), Controllers/TaskController.cs (also served
under /mj-fast, /mj-relax, /mj-turbo):

- Cancel: ``_isAnonymous = user?.Role != ADMIN``, so any caller whose token is not an admin's gets
  HTTP 400 ``BadRequest("演示模式，禁止操作")`` (a plain string: text/plain, or a JSON string when
  the client accepts only JSON). An admin may cancel any task: one not completed (SUCCESS,
  FAILURE, CANCEL) gets ``Fail("取消任务")`` (Models/TaskInfo.cs: status FAILURE, failReason
  ``取消任务``, progress "", finishTime now; a MODAL or queued one too). The answer is always
  ``Ok()``: HTTP 200, empty body, also for an unknown or finished task. Nothing in trueai sets
  status CANCEL (only counted in HomeController.cs). trueai saves a cancelled queued task
  without a notifyHook push; the sim pushes it, as it pushes every save.
- ImageSeed: unknown task: HTTP 404 ``{"code": 3, "description": "关联任务不存在或已失效",
  "result": null, "properties": {}}``; a task with a seed: HTTP 200 ``{"code": 1, "description":
  "成功", "result": "<seed>", "properties": {}}``; no seed and no message hash (not finished on
  Discord): HTTP 400 ``{"code": 4, "description": "关联任务状态错误", ...}``; no seed but a hash:
  Services/TaskService.cs SubmitSeed asks Discord and waits up to a minute (code 1 and the seed,
  code 9 with the seed error, or code 3 ``未找到 seed``). The sim gives every finished task but
  a SHORTEN a seed when it succeeds, so that last case does not arise.

new-api (QuantumNous/new-api): router/relay-router.go has ``GET /task/:id/image-seed`` (no
cancel route: that path gets the web UI's index.html). relay/mjproxy_handler.go
RelayMidjourneyTaskImageSeed looks the id up among the key's own tasks (none: HTTP 400
``{"description": "task_no_found ", "type": "upstream_error", "code": 4}``), relays the GET and
answers with the upstream's HTTP status and the body re-encoded as its MidjourneyResponse
(dto/midjourney.go): ``{"code", "description", "properties", "result"}``, a null result as "".
novicezk has neither route (Spring's 404 JSON, which new-api reads as code 0).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .timeline import FAILURE
from .wire import _json_response

CANCEL_REASON = "取消任务"  # Models/TaskInfo.cs Fail, called by TaskController.Cancel
DEMO_REFUSAL = "演示模式，禁止操作"
# The title of Midjourney's embed for a link it cannot read, one DiscordWebSocketService.cs fails
# a task on (failReason "<title>, <description>"); the sim puts the link as the description.
INVALID_LINK = "Invalid link"


def _vo(code: int, description: str, result: Any = None) -> dict[str, Any]:
    """SubmitResultVO as System.Text.Json writes it (Models/SubmitResultVO.cs)."""
    return {"code": code, "description": description, "result": result, "properties": {}}


class _TaskRoutesMixin:
    """ProxySim's cancel and image-seed routes, and describe's link check."""

    def _link_usable(self, link: str) -> bool:
        """Whether the sim's Midjourney can read a describe ``link``: not one listed in
        ``dead_links``, and, if it points at the sim itself, one of the images it serves."""
        if link in self.dead_links:
            return False
        if not link.startswith(f"http://{self.host}:{self.port}/"):
            return True  # elsewhere (a Discord CDN link, say): Midjourney fetches it
        prefix = self.base_url + "/image/"
        name = link[len(prefix) :].split("?", 1)[0] if link.startswith(prefix) else ""
        if name.startswith("attachments/"):
            return name.removeprefix("attachments/") in self._stored
        found = self._media_for(name) if name else None
        return found is not None and found[1].startswith("image/")

    async def _cancel(self, request: web.Request) -> web.Response:
        """trueai's POST /task/{id}/cancel (TaskController.Cancel)."""
        if not self.admin:
            if "application/json" in request.headers.get("Accept", "") and "*/*" not in request.headers.get(
                "Accept", ""
            ):
                return _json_response(DEMO_REFUSAL, status=400)
            return web.Response(status=400, text=DEMO_REFUSAL, content_type="text/plain", charset="utf-8")
        task = self.tasks.get(request.match_info["id"])
        if task is not None and not task.is_finished:
            task.status, task.progress, task.fail_reason = FAILURE, "", CANCEL_REASON
            self._save(task)
        return web.Response(status=200)

    def _seed_answer(self, task_id: str) -> tuple[int, dict[str, Any]]:
        """trueai's TaskController.ImageSeed: (HTTP status, SubmitResultVO)."""
        task = self.tasks.get(task_id)
        if task is None:
            return 404, _vo(3, "关联任务不存在或已失效")
        if task.seed:
            return 200, _vo(1, "成功", task.seed)
        return 400, _vo(4, "关联任务状态错误")  # no seed and no message hash yet

    async def _image_seed(self, request: web.Request) -> web.Response:
        """GET /task/{id}/image-seed: trueai's answer, or new-api's relay of its upstream's."""
        task_id = request.match_info["id"]
        if self.flavour != "newapi":
            status, answer = self._seed_answer(task_id)
            return _json_response(answer, status=status)
        if task_id not in self.gateway_tasks:
            return self._flavour.error("task_no_found")
        if self._upstream.name == "novicezk":
            status, answer = 404, {}  # Spring's 404 JSON: no code, description or result in it
        else:
            status, answer = self._seed_answer(task_id)
        result = answer.get("result")
        return _json_response(
            {
                "code": answer.get("code", 0),
                "description": answer.get("description") or "",
                "properties": answer.get("properties"),
                "result": result if isinstance(result, str) else "",
            },
            status=status,
        )
