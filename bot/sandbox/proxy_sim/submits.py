"""The submit logic of the server holding the tasks: imagine, change, describe and blend (action
and modal: actions.py; shorten: shorten.py; video and uploads: videos.py, uploads.py), trueai's
binding of a body to its DTO, admission to the running slots or the queue, and trueai's NewTask
checks."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from .buttons import _video_batch_size
from .modes import requested_mode
from .task_routes import INVALID_LINK
from .tasks import SimTask, _description
from .timeline import (
    CHANGE_ACTIONS,
    CHANGEABLE_PARENT_ACTIONS,
    DESCRIBE_MARKS,
    DESCRIBED,
    DISCORD_INSTANCE_ID,
    FAILURE,
    IN_PROGRESS,
    NOT_START,
    SUBMITTED,
    SUCCESS,
    Step,
)
from .trueai_input import bind, parse_image, parse_images
from .videos import asks_for_video
from .wire import _is_data_url, _logic_error, _Outcome, _parse_index


class _SubmitMixin:
    """ProxySim's submits (the upstream's task logic), called by the flavours."""

    # ---- internals: submits (the upstream's task logic) -------------------

    def _run_submit(
        self, kind: str, body: dict, speed: str | None, raw: bytes | None = None
    ) -> _Outcome | web.Response:
        """A submit as the server holding the tasks (``_upstream``) handles it. trueai first binds
        the body to its DTO (``raw``: the bytes it was sent; None: the JSON new-api re-encodes)."""
        if self._upstream.name == "trueai":
            body, error = bind(kind, body, raw)
            if error is not None:
                return _logic_error(error)  # Program.cs InvalidModelStateResponseFactory: Result.Fail
        if kind == "upload-discord-images":
            return self._do_upload(body)
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
        if kind == "shorten":
            return self._do_shorten(body, speed)
        return self._do_modal(body)

    def _do_describe(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        """/submit/describe: four prompts for one image, numbered 1️⃣-4️⃣ and separated by blank
        lines in ``properties.finalPrompt`` (and ``prompt``), as Midjourney writes them.

        novicezk (controller/SubmitController.java describe) reads only ``base64``: blank is code 4
        ``base64不能为空``, not a data URL ``base64格式错误``. trueai (Controllers/SubmitController.cs
        Describe) takes ``base64`` or ``link``: neither is ``base64或link不能为空``, a link not matching
        ``^https?://.+`` is ``链接格式错误`` (checked first), a base64 DataUrl.Parse refuses is
        ``base64格式错误``; base64 wins over link. Services/TaskService.cs SubmitDescribe hands a link
        (or a base64 that is a link) to Midjourney as it is and stores bytes on Discord; either URL
        is the task's imageUrl from the start. Only Midjourney reads the link, so one it cannot
        use fails the task later (the sim: a link in ``dead_links``, or one of its own URLs that
        serves no image), as DiscordWebSocketService.cs fails a task on an "Invalid link" embed."""
        link = None
        if self._upstream.name == "trueai":
            base64, link = body.get("base64"), body.get("link")
            if not (base64 or "").strip() and not (link or "").strip():
                return _Outcome(4, "base64或link不能为空")
            if (link or "").strip() and not re.match(r"https?://.", link):
                return _Outcome(4, "链接格式错误")
            if (base64 or "").strip():
                try:
                    image = parse_image(base64)
                except ValueError:
                    return _Outcome(4, "base64格式错误")
                link = image.url  # DataUrl.Parse keeps "http..." as a link
            else:
                image = None
        elif not (body.get("base64") or "").strip():
            return _Outcome(4, "base64不能为空")
        elif not _is_data_url(body["base64"]):
            return _Outcome(4, "base64格式错误")
        limit = self._limit_refusal(body)
        if limit is not None:
            return _logic_error(limit)  # NewTask's LogicException: Describe has no try
        timeline = None
        if link is not None and not self._link_usable(link):
            if self._next_timelines:
                self._next_timelines.pop(0)  # this task still uses up its scripted timeline
            timeline = (Step(SUBMITTED, "0%"), Step(FAILURE, "", fail_reason=f"{INVALID_LINK}, {link}"))
        elif self._upstream.name == "trueai" and image is not None and image.url is None:
            link = self._store_upload(image)  # UploadAsync: a Discord attachment
        prompts = "\n\n".join(f"{mark} {text}" for mark, text in zip(DESCRIBE_MARKS, DESCRIBED, strict=True))
        mode = requested_mode(speed, body)  # NewTaskDoFilter (modes.py); no prompt to read a flag from
        task = self._new_task(
            action="DESCRIBE",
            prompt=prompts,
            prompt_en=prompts,
            description="/describe",
            timeline=timeline,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=mode,  # SubmitDescribe picks no mode: the one asked for, else none until it ends
            request_mode=mode,
            image_url=link,
        )
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
        limit = self._limit_refusal(body)
        if limit is not None:
            return _logic_error(limit)  # NewTask's LogicException: Blend has no try
        mode = requested_mode(speed, body)  # trueai's NewTaskDoFilter; novicezk shows no mode
        task = self._new_task(
            action="BLEND",
            prompt="",
            prompt_en="",
            description=f"/blend {len(images)} {dimensions}",
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=mode or "FAST",
            request_mode=mode,
        )
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
        if self._upstream.name == "trueai":
            return self._do_trueai_imagine(body, prompt, speed)
        # novicezk checks banned words (on the translated prompt) before the images.
        banned = self._banned_word(prompt)
        if banned is not None:
            return _Outcome(24, "可能包含敏感词", None, {"promptEn": prompt, "bannedWord": banned})
        images = list(body.get("base64Array") or [])
        if body.get("base64"):
            images.append(body["base64"])
        if not all(_is_data_url(image) for image in images):
            return _Outcome(4, "base64格式错误")
        task = self._new_task(
            action="IMAGINE",
            prompt=prompt,
            prompt_en=prompt,
            description=_description("IMAGINE", prompt, None, None),
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=speed or "FAST",
        )
        return self._admit(task)

    def _do_trueai_imagine(self, body: dict, prompt: str, speed: str | None) -> _Outcome | web.Response:
        """trueai's /submit/imagine (Controllers/SubmitController.cs Imagine, Services/TaskService.cs
        SubmitImagine): botType read loosely (GetBotType: "niji" / "NIJI_JOURNEY", else MID_JOURNEY),
        no ``base64`` field, images as DataUrl.Parse reads them, stored and put before the prompt;
        a ``--video`` prompt makes a VIDEO task; a banned word fails the task later."""
        limit = self._limit_refusal(body)
        if limit is not None:
            return _Outcome(4, limit)  # Imagine catches the LogicException: a code 4 SubmitResultVO
        try:
            images = parse_images(body.get("base64Array") or [])
        except ValueError:
            return _Outcome(4, "base64格式错误")
        video = asks_for_video(prompt)
        if video and not self.video:
            return _Outcome(9, "视频功能未启用")
        timeline = None
        banned = self._banned_word(prompt)
        if banned is not None:  # trueai takes it; Midjourney then refuses the job
            if self._next_timelines:
                self._next_timelines.pop(0)  # this task still uses up its scripted timeline
            timeline = (Step(SUBMITTED, "0%"), Step(FAILURE, "", fail_reason=f"Banned prompt detected: {banned}"))
        mode = requested_mode(speed, body, prompt)  # NewTaskDoFilter, before the images go in (modes.py)
        prompt, refusal = self._imagine_images(prompt, images)
        if refusal is not None:
            return _Outcome(9, refusal)
        task = self._new_task(
            action="VIDEO" if video else "IMAGINE",
            prompt=prompt,
            prompt_en=prompt,
            description=f"/imagine {prompt}",
            timeline=timeline,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=mode or "FAST",  # ChooseInstance: FAST first when none is asked for
            request_mode=mode,
            bot_type="NIJI_JOURNEY" if body.get("botType") in ("niji", "NIJI_JOURNEY") else "MID_JOURNEY",
            video=video,
            batch_size=_video_batch_size(prompt),
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

    def _limit_refusal(self, body: dict | None = None) -> str | None:
        """trueai NewTask's checks (Controllers/SubmitController.cs): state at most 255 characters,
        notifyHook at most 2000, then the user's limits; the LogicException text, or None."""
        if self._upstream.name != "trueai":
            return None
        body = body or {}
        if isinstance(body.get("state"), str) and len(body["state"]) > 255:
            return "State参数过长，最大255字符"
        if isinstance(body.get("notifyHook"), str) and len(body["notifyHook"]) > 2000:
            return "NotifyHook参数过长，最大2000字符"
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
