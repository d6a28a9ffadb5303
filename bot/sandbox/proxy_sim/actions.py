"""trueai's buttons pressed: /submit/action (Remix included), /submit/modal, and new-api's
/submit/change turned into the matching button over trueai.

Facts from trueai-org/midjourney-proxy (v11.10.x):

- Controllers/SubmitController.cs Action: taskId and customId required (code 4 ``参数错误``), the
  parent must exist (HTTP 404, code 3 ``关联任务不存在或已失效``) and be SUCCESS (code 4
  ``关联任务状态错误``); NewTask's checks (a LogicException); then the customId's prefix picks the
  action, and a prefix it does not know is code 4 ``未知的 Action 类型`` (e.g. the /shorten
  reply's ``MJ::Job::PromptAnalyzer::<n>``).
- Services/TaskService.cs SubmitAction, in this order: Custom Zoom and Vary (Region) always wait
  for /submit/modal (status MODAL, code 21 ``Waiting for window confirm``, properties
  ``{finalPrompt, remix: true}``); ``"enableRemix": true`` in the body (Dto/SubmitActionDTO.cs,
  "可强制绕过账号指定的Remix自动提交") on an account whose Remix is off is code 4
  ``当前账号不支持 remix，请开启 remix 功能``, and with Remix on makes a pan, a variation (V1-V4,
  Vary Subtle/Strong), a video or a reroll wait in MODAL (skipping auto-submit); then, with the
  account's Remix on, those same actions wait in MODAL, or with the account's RemixAutoSubmit
  are submitted at once with the parent's promptEn (SubmitModal: code 1). Upscales, zooms and
  HD upscales never wait for Remix.
- Controllers/SubmitController.cs Modal: taskId required, the task must exist (404, code 3); no
  prompt: the parent's prompt, else its finalPrompt; none: code 4 ``prompt不能为空``.
"""

from __future__ import annotations

from aiohttp import web

from .buttons import _WINDOW_WAIT, _action_of, _video_batch_size
from .tasks import SimTask, _description
from .timeline import FAILURE, MODAL, SUBMITTED, SUCCESS, Step
from .wire import _is_data_url, _logic_error, _Outcome, _parse_index

# Actions that wait for a prompt in Remix mode (TaskService.cs SubmitAction, with reroll by customId).
_REMIX_ACTIONS = frozenset({"PAN", "VARIATION", "VIDEO"})
_NO_REMIX = "当前账号不支持 remix，请开启 remix 功能"


class _ActionMixin:
    """ProxySim's /submit/action and /submit/modal (trueai), and new-api's change over trueai."""

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
        if parent.status != SUCCESS:
            return _Outcome(4, "关联任务状态错误")
        limit = self._limit_refusal(body)
        if limit is not None:  # NewTask's LogicException: no try around it in Action
            return _logic_error(limit)
        parsed = _action_of(custom_id)
        if parsed is None and not custom_id.startswith(("MJ::Job::PicReader", "MJ::Picread::Retry")):
            return _Outcome(4, "未知的 Action 类型")
        if parsed is None or not any(b["customId"] == custom_id for b in parent.buttons):
            # The sim's shortcut: trueai does not compare with the parent's buttons, it sends the
            # interaction and Discord refuses it (PicReader buttons are not simulated).
            return _Outcome(4, "无效的customId")
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
            mode="FAST",  # GetInstanceByTask: the account's first allowed mode (see modes.py)
            request_mode=speed,  # NewTask: the path's mode
            bot_type=parent.bot_type,
            custom_id=custom_id,
            video=video,
            batch_size=batch_size,
        )
        if custom_id.startswith("MJ::CustomZoom::") or inpaint:
            return self._wait_for_modal(task)
        remixable = action in _REMIX_ACTIONS or custom_id.startswith("MJ::JOB::reroll")
        if body.get("enableRemix") is True:
            if not self.remix:  # a Discord account with Remix off
                return _Outcome(4, _NO_REMIX)
            if remixable:
                return self._wait_for_modal(task)  # even with remix_auto_submit
        if self.remix and remixable:
            if not self.remix_auto_submit:
                return self._wait_for_modal(task)
            # RemixAutoSubmit: SubmitModal at once with the parent's promptEn.
            task.prompt = task.prompt_en = task.final_prompt = parent.prompt_en
        return self._admit(task)

    def _wait_for_modal(self, task: SimTask) -> _Outcome:
        """The task waits in MODAL; code 21 with properties finalPrompt and remix (SubmitAction)."""
        self._register(task)
        task.status = MODAL
        if task.custom_id and task.custom_id.startswith("MJ::CustomZoom::"):
            task.description = _WINDOW_WAIT  # SubmitController.Action
        self._save(task)
        return _Outcome(21, _WINDOW_WAIT, task.id, {"finalPrompt": task.prompt_en, "remix": True})

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
