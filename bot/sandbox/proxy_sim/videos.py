"""trueai's ``POST /submit/video`` (Controllers/SubmitController.cs ``Video``, Dto/SubmitVideoDTO.cs,
Services/TaskService.cs ``SubmitVideo``), checked in the order the source checks:

1. Setting.EnableVideo off: code 4 ``视频功能未启用``.
2. ``prompt`` blank: code 4 ``Prompt 不能为空`` (an ``image`` does not make it optional).
3. ``image`` / ``endImage`` (both optional): a link (``http...``) is used as it is; anything else
   must be a data URL or bare base64 (DataUrl.Parse), else code 4 ``base64格式错误``.
4. NewTask's LogicException (state over 255 characters, notifyHook over 2000, the user's limits):
   not caught here, so the HTTP 200 ``{"success": false, "code": -1, "message": ...}`` body.
5. ``taskId`` given: ``action`` must be exactly ``extend`` (code 4 ``任务类型错误``); the task
   must exist (HTTP 404, code 3 ``关联任务不存在或已失效``) and be SUCCESS (code 4 ``关联任务状态错误``).
6. ``action`` ``extend`` (any case) without a taskId: code 3 ``目标任务不存在``, HTTP 200.

``motion`` (default ``low``), ``loop``, ``batchSize`` (default 4), ``index`` and ``videoType`` are
not checked: they are written into the prompt. The stored start image's URL comes first, then
``--video 1``, ``--end loop`` (loop) or ``--end <endImage URL>``, ``--motion <motion>`` and
``--bs <n>`` for a batchSize of 1 or 2, each only when the prompt lacks that flag; the batch has
as many videos as ``--bs`` says (TaskInfo.GetVideoBatchSize), else 4. The task's prompt and
promptEn are that composed prompt, its description ``/video <composed prompt>`` (an extend,
which a Discord account runs as an upscale of the video then Extend: ``/video extend``). The
answer is the usual SubmitResultVO: code 1 ``提交成功`` with the task id, 22 queued, or 9 queue full.
"""

from __future__ import annotations

import re

from aiohttp import web

from .buttons import _video_batch_size
from .modes import prompt_mode
from .timeline import SUCCESS
from .trueai_input import parse_image
from .wire import _logic_error, _Outcome


def _has(prompt: str, flag: str) -> bool:
    return flag.lower() in prompt.lower()  # TaskService.cs: prompt.Contains(flag, OrdinalIgnoreCase)


def compose_video_prompt(
    prompt: str, start_url: str, end_url: str, loop: bool, motion: str | None, batch_size: int | None
) -> str:
    """Services/TaskService.cs SubmitVideo: the prompt sent to Midjourney."""
    if start_url and start_url.lower() not in prompt.lower():
        prompt = f"{start_url} {prompt}"
    if not _has(prompt, "--video"):
        prompt += " --video 1"
    if loop and not _has(prompt, "--end"):
        prompt += " --end loop"
    if end_url and not _has(prompt, "--end"):
        prompt += f" --end {end_url}"
    if motion and motion.strip() and not _has(prompt, "--motion"):
        prompt += f" --motion {motion}"
    if batch_size in (1, 2) and not _has(prompt, "--bs"):
        prompt += f" --bs {batch_size}"
    return prompt


class _VideoMixin:
    """ProxySim's /submit/video (trueai, and through new-api in front of it)."""

    def _do_video(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        if not self.video:
            return _Outcome(4, "视频功能未启用")
        prompt = body.get("prompt")
        if prompt is None or not prompt.strip():
            return _Outcome(4, "Prompt 不能为空")
        try:
            start, end = parse_image(body.get("image")), parse_image(body.get("endImage"))
        except ValueError:
            return _Outcome(4, "base64格式错误")
        limit = self._limit_refusal(body)
        if limit is not None:
            return _logic_error(limit)  # no try around NewTask in Video
        action = body.get("action")
        parent = None
        task_id = body.get("taskId")
        if task_id is not None and task_id.strip():
            if action != "extend":  # videoDTO.Action?.Equals("extend"): case-sensitive here
                return _Outcome(4, "任务类型错误")
            parent = self.tasks.get(task_id)
            if parent is None:
                return _Outcome(3, "关联任务不存在或已失效")  # NotFound(...): HTTP 404
            if parent.status != SUCCESS:
                return _Outcome(4, "关联任务状态错误")
        extend = action is not None and action.lower() == "extend"  # SubmitVideo: any case
        if extend and parent is None:
            return _Outcome(3, "目标任务不存在", http_status=200)  # returned by Ok(data)
        # A Discord account stores a start or end image given as bytes (UploadAsync); a link stays.
        urls = []
        for image in (start, end):
            url = "" if image is None else image.url or self._store_upload(image)
            if url is None:
                return _Outcome(9, "上传图片到云存储异常")
            urls.append(url)
        composed = compose_video_prompt(
            prompt, urls[0], urls[1], body.get("loop") is True, body.get("motion", "low"), body.get("batchSize", 4)
        )
        index = body.get("index")
        task = self._new_task(
            action="VIDEO",
            prompt=composed,
            prompt_en=composed,
            description="/video extend" if extend else f"/video {composed}",
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            parent_id=parent.id if parent is not None else None,
            index=index + 1 if isinstance(index, int) else None,  # video_virtual_upscale::<index + 1>
            # SubmitController.cs Video: the path's mode, else the prompt's flag in any case (modes.py).
            mode=speed or prompt_mode(prompt, any_case=True) or (parent.mode if parent is not None else "FAST"),
            request_mode=speed,
            bot_type=parent.bot_type if parent is not None else "MID_JOURNEY",
            video=True,
            batch_size=_video_batch_size(composed),
        )
        return self._admit(task)

    def _imagine_images(self, prompt: str, images: list) -> tuple[str, str | None]:
        """Services/TaskService.cs SubmitImagine on a Discord account: each image of base64Array is
        stored (UploadAsync) and the URLs, space-separated, go before the prompt; no limit on how
        many. Returns (prompt, refusal description or None)."""
        urls = []
        for image in images:
            url = self._store_upload(image)
            if url is None:  # a link has no bytes to store
                return prompt, "上传图片到云存储异常"
            urls.append(url)
        return (" ".join(urls) + " " + prompt if urls else prompt), None


_VIDEO_FLAG = re.compile(r"--video", re.IGNORECASE)


def asks_for_video(prompt: str) -> bool:
    """TaskService.cs SubmitImagine: a prompt with ``--video`` makes a VIDEO task."""
    return _VIDEO_FLAG.search(prompt) is not None
