"""Reading the proxy's answers: the human part of an error body, the queue position, web pages
where JSON was expected. The servers' shapes are in the contract doc's "What the servers really
send"."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from bot.core.errors import (
    BannedPrompt,
    InvalidSubmit,
    ParentNotFound,
    ProxyBadResponse,
    ProxySystemError,
    QueueFull,
    QuotaExhausted,
    SubmitRefused,
)
from bot.core.models import SubmitAccepted

_BODY_SNIPPET = 200
QUEUE_FULL = re.compile(r"队列已满|queue.*full", re.IGNORECASE)
# The queue position in a description: novicezk "排队中，前面还有3个任务", and English variants.
_QUEUE_AHEAD = re.compile(r"前面还有\s*(\d+)|(\d+)\s+(?:tasks?|jobs?)\s+ahead", re.IGNORECASE)
# new-api's 403 for a key that may not use a model: "该令牌无权访问模型 mj_blend" (or English).
MODEL_DENIED = re.compile(r"(?:无权访问模型|not allowed to (?:use|access) (?:the )?model)\s*:?\s*(\S*)", re.IGNORECASE)


# Codes that mean "the task exists and will run": 1 submitted, 22 queued, 21 (novicezk) exists.
_ACCEPTED_CODES = {1, 21, 22}
REFUSALS: dict[int, type[SubmitRefused]] = {
    3: ParentNotFound,
    4: InvalidSubmit,
    9: ProxySystemError,
    23: QueueFull,
    24: BannedPrompt,
}


def submit_answer(path: str, data: Any) -> SubmitAccepted:
    """The accepted task of a submit's answer, or the refusal it means, raised."""
    if not isinstance(data, dict) or "code" not in data:
        raise ProxyBadResponse(f"POST {path}: answer without a code", detail=snippet(str(data)))
    # trueai's refusals say "message" ({"success": false, "code": -1, "message": "并发数已达上限"}).
    description = str(data.get("description") or data.get("message") or "").strip()
    try:
        code = int(data["code"])
    except (TypeError, ValueError):
        if not description:
            raise ProxyBadResponse(f"POST {path}: non-numeric code", detail=snippet(str(data))) from None
        # new-api's relay errors may carry a word for a code; the description is the reason.
        raise SubmitRefused(str(data["code"]), description) from None  # type: ignore[arg-type]
    properties = data.get("properties") if isinstance(data.get("properties"), dict) else {}
    result = data.get("result")
    if code in _ACCEPTED_CODES and result not in (None, "") and data.get("success") is not False:
        # 21 is "exists" on novicezk but "waiting for a modal" on trueai: the task's status says.
        # new-api turns 22 into 1 but keeps the position, so it is read whatever the code.
        return SubmitAccepted(task_id=str(result), queue_ahead=queue_ahead(properties, description), code=code)
    refusal = REFUSALS.get(code, SubmitRefused)
    if code == 9 and QUEUE_FULL.search(description):
        refusal = QueueFull  # trueai says 9 for a full queue
    if "quota_not_enough" in description:
        refusal = QuotaExhausted  # new-api: the gateway key has no credit left
    extra: dict[str, Any] = {}
    if refusal is BannedPrompt:
        extra["banned_word"] = str(properties.get("bannedWord") or "")
    raise refusal(code, description, properties, **extra)


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text[:_BODY_SNIPPET] + ("…" if len(text) > _BODY_SNIPPET else "")


def add_optional(body: dict[str, Any], **fields: str | None) -> None:
    body.update({name: value for name, value in fields.items() if value})


def queue_ahead(properties: dict[str, Any], description: str) -> int | None:
    """How many jobs wait ahead of a new task: ``properties.numberOfQueues``, else the description."""
    try:
        return max(0, int(properties.get("numberOfQueues")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        match = _QUEUE_AHEAD.search(description)
        return int(match.group(1) or match.group(2)) if match else None


def is_web_page(response: httpx.Response) -> bool:
    if "html" in response.headers.get("content-type", "").lower():
        return True
    start = response.text.lstrip()[:15].lower()
    return start.startswith(("<!doctype", "<html"))


def looks_like_api_json(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "code" in data


def error_message(text: str) -> str | None:
    """The human part of an error body: ``description``, ``message`` or ``error.message``."""
    try:
        data = json.loads(text)
    except ValueError:
        return snippet(text) or None
    if isinstance(data, dict):
        for key in ("description", "message"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"].strip()
        if isinstance(error, str):
            return error
    return snippet(text) or None
