"""trueai's /submit/shorten: a SHORTEN task whose result is Midjourney's prompt analysis.

Facts from trueai-org/midjourney-proxy (v11.10.x):

- Controllers/SubmitController.cs Shorten binds SubmitImagineDTO (prompt, botType, accountFilter,
  state, notifyHook), runs NewTask's checks (a LogicException: HTTP 200 Result.Fail), and does
  *not* check the prompt (no "prompt不能为空", no banned words: that code is commented out);
  action SHORTEN, prompt and promptEn the prompt as sent, description ``/shorten <prompt>``.
  Services/TaskService.cs ShortenAsync queues it like an imagine: code 1 / 22 / 9 (queue full).
- Services/DiscordService.cs: the queue sends Midjourney's /shorten with the prompt; a refused
  interaction (an empty prompt: Discord answers 400) fails the task with
  ``"<HTTP status>: <the interaction JSON>"`` (PostJsonAndCheckStatusAsync), before SUBMITTED.
- Services/DiscordWebSocketService.cs HandleShorten: the reply's first embed description becomes
  the task's ``description`` *and* ``properties.finalPrompt``; FinishTask takes the reply's
  buttons as they are and sets no image (no attachment): ``imageUrl`` stays null.
- Pressing a shortened prompt: Services/TaskService.cs SubmitAction has a branch for customIds
  ``MJ::Job::PromptAnalyzer::<n>`` (n = the line after "Shortened prompts", 1-based), but
  SubmitController.cs Action never lets one through: no prefix of its list matches, so it answers
  code 4 ``未知的 Action 类型``. A shortened prompt is imagined by a new /submit/imagine.

new-api relays /mj/submit/shorten (router/relay-router.go), bills it as ``mj_shorten`` and keeps
only ``properties.finalPrompt`` of the result (its copy has no ``description`` refresh:
controller/midjourney.go UpdateMidjourneyTaskBulk); novicezk has no such route.

Midjourney's own text is not in any of these sources: the analysis below (important tokens in
bold, dropped ones struck through, five shorter prompts numbered 1️⃣-5️⃣ under
"## Shortened prompts", the prompt's parameters kept) is the sim's deterministic stand-in.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .modes import requested_mode
from .timeline import FAILURE, Step
from .wire import _logic_error, _Outcome

SHORTEN_MARKS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
# Words the sim's stand-in analysis finds unimportant.
_FILLER = frozenset(
    "a an the of with and or in on at to for by from is are very really please thank thanks you me "
    "make create picture image some".split()
)
_PARAMS = re.compile(r"(?:^|\s)(--\w.*)$", re.DOTALL)  # the parameters: from the first " --x" on
_EDGE = ",.;:!?\"'()[]"


def _split(prompt: str) -> tuple[list[str], str]:
    """The prompt's words and its parameters (``--ar 3:2 ...``, "" if none)."""
    match = _PARAMS.search(prompt)
    params = match.group(1).strip() if match else ""
    text = prompt[: match.start()] if match else prompt
    words = [word.strip(_EDGE) for word in text.split()]
    return [word for word in words if word], params


def shortened_prompts(prompt: str) -> list[str]:
    """Five shorter prompts made from ``prompt``'s important words (all of them, then fewer and
    fewer), each followed by the prompt's parameters; deterministic."""
    words, params = _split(prompt)
    kept = [word for word in words if word.lower() not in _FILLER] or words
    prompts = []
    for k in range(len(SHORTEN_MARKS)):
        count = max(1, round(len(kept) * (len(SHORTEN_MARKS) - k) / len(SHORTEN_MARKS)))
        prompts.append(" ".join([", ".join(kept[:count]), params]).strip())
    return prompts


def shorten_description(prompt: str) -> str:
    """The embed description HandleShorten stores: important tokens, then the shortened prompts
    (one per line, separated by blank lines, each after its number emoji)."""
    words, _ = _split(prompt)
    tokens = " ".join(f"~~{word}~~" if word.lower() in _FILLER else f"**{word}**" for word in words)
    lines = [f"{mark} {text}" for mark, text in zip(SHORTEN_MARKS, shortened_prompts(prompt), strict=True)]
    return "## Important tokens\n" + tokens + "\n\n## Shortened prompts\n" + "\n\n".join(lines)


def shorten_buttons() -> list[dict[str, Any]]:
    """The reply's buttons as FinishTask keeps them (emoji name, empty label): one per prompt,
    ``MJ::Job::PromptAnalyzer::<n>`` (TaskService.cs SubmitAction reads n from the last part)."""
    return [
        {"customId": f"MJ::Job::PromptAnalyzer::{n}", "emoji": mark, "label": "", "style": 2, "type": 2}
        for n, mark in enumerate(SHORTEN_MARKS, start=1)
    ]


def _refused_interaction(prompt: str | None) -> str:
    """PostJsonAndCheckStatusAsync's failReason for the /shorten Discord refuses: the status and
    (the start of) the interaction sent; the sim's payload is a short stand-in."""
    payload = {"type": 2, "data": {"name": "shorten", "options": [{"type": 3, "name": "prompt", "value": prompt}]}}
    return "BadRequest: " + json.dumps(payload, ensure_ascii=False)[:1000]


class _ShortenMixin:
    """ProxySim's /submit/shorten (trueai, and through new-api in front of it)."""

    def _do_shorten(self, body: dict, speed: str | None) -> _Outcome | web.Response:
        limit = self._limit_refusal(body)
        if limit is not None:
            return _logic_error(limit)  # NewTask's LogicException: Shorten has no try
        prompt = body.get("prompt")
        timeline = None
        if prompt is None or not prompt.strip():  # accepted; Discord then refuses the /shorten
            if self._next_timelines:
                self._next_timelines.pop(0)  # this task still uses up its scripted timeline
            timeline = (Step(FAILURE, "", fail_reason=_refused_interaction(prompt)),)
        mode = requested_mode(speed, body, prompt)
        task = self._new_task(
            action="SHORTEN",
            prompt=prompt or "",
            prompt_en=prompt or "",
            description=f"/shorten {prompt or ''}",
            timeline=timeline,
            state=body.get("state"),
            notify_hook=body.get("notifyHook") or None,
            mode=mode or "FAST",
            request_mode=mode,
            bot_type="NIJI_JOURNEY" if body.get("botType") in ("niji", "NIJI_JOURNEY") else "MID_JOURNEY",
        )
        return self._admit(task)


def finish_shorten(task: Any) -> None:
    """HandleShorten on SUCCESS: the analysis in description and finalPrompt, its buttons, no
    image and no seed (there is no job image to read one from)."""
    analysis = shorten_description(task.prompt)
    task.description = task.final_prompt = analysis
    task.buttons = shorten_buttons()
    task.image_url = None
    task.seed = None
