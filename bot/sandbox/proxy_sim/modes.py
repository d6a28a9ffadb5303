"""trueai's speed modes: which mode a task asks for (``requestMode``) and which it runs and ends
in (``mode``). Facts from trueai-org/midjourney-proxy:

- SimpleAuthMiddleware.cs: a path under ``/mj-turbo``, ``/mj-relax`` or ``/mj-fast`` sets the
  request's mode; Controllers/SubmitController.cs NewTask stores it as ``Mode`` and ``RequestMode``.
- SubmitController.cs NewTaskDoFilter (imagine, shorten, describe, blend): the modes wanted are the
  path's first, then ``accountFilter.modes``, then a flag in the prompt: ``--fast`` (any case),
  else ``--relax``, else ``--turbo`` (those two case-sensitive); the first of them becomes the
  task's ``mode`` and ``requestMode``. Services/DiscordAccountService.cs ChooseInstance tries
  FAST, TURBO, RELAX when none is wanted, so an account that allows all runs it FAST.
- SubmitController.cs Video: with no path mode, the prompt's flags in any case.
- SubmitController.cs Action builds no account filter, and Services/TaskService.cs
  GetInstanceByTask picks the account's first allowed mode (``mode ?? FAST``): an action runs
  FAST whatever path it came in on or its parent's mode ("每个任务都是独立计算速度模式的");
  its ``requestMode`` is still the path's.
- SubmitDescribe sets no mode: a describe without a path mode has ``mode`` null until it ends.
- Models/TaskInfo.cs SuccessUpdate: on success a ``--fast`` / ``--relax`` / ``--turbo`` in the
  final prompt (any case) sets ``mode``; still none: FAST.

new-api (QuantumNous/new-api) serves ``/:mode/mj`` too (router/relay-router.go) and strips the
prefix before relaying (relay/mjproxy_handler.go getMjRequestPath), so the upstream never sees a
path mode; the prompt's flags go through unless its admin turns MjModeClearEnabled on
(service/midjourney.go DoMidjourneyHttpRequest; off by default).
"""

from __future__ import annotations

from typing import Any

SPEEDS = ("FAST", "RELAX", "TURBO")


def prompt_mode(prompt: str | None, *, any_case: bool = False) -> str | None:
    """The mode a prompt's flag asks for (NewTaskDoFilter's order and case rules), or None."""
    text = prompt or ""
    if "--fast" in text.lower():
        return "FAST"
    text = text.lower() if any_case else text
    if "--relax" in text:
        return "RELAX"
    if "--turbo" in text:
        return "TURBO"
    return None


def filter_modes(body: dict[str, Any]) -> list[str]:
    """``accountFilter.modes`` as trueai binds it (enum names, any case; numbers 0-2 too:
    Models/Enums.cs GenerationSpeedMode is RELAX, FAST, TURBO in that order)."""
    account_filter = body.get("accountFilter")
    modes = account_filter.get("modes") if isinstance(account_filter, dict) else None
    wanted = []
    for mode in modes if isinstance(modes, list) else []:
        if isinstance(mode, str) and mode.upper() in SPEEDS:
            wanted.append(mode.upper())
        elif isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 2:
            wanted.append(("RELAX", "FAST", "TURBO")[mode])
    return wanted


def requested_mode(speed: str | None, body: dict[str, Any], prompt: str | None = None) -> str | None:
    """NewTaskDoFilter's first mode: the path's, else the account filter's, else the prompt's."""
    if speed:
        return speed
    wanted = filter_modes(body)
    return wanted[0] if wanted else prompt_mode(prompt)


def settle_mode(task: Any) -> None:
    """TaskInfo.SuccessUpdate: the final prompt's flag, else the mode it had, else FAST."""
    flag = prompt_mode(task.final_prompt, any_case=True)
    if flag is not None:
        task.mode = flag
    elif task.mode is None:
        task.mode = "FAST"
