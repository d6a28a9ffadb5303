"""Reading the proxy's answers: the human part of an error body, the queue position, web pages
where JSON was expected. The servers' shapes are in the contract doc's "What the servers really
send"."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

_BODY_SNIPPET = 200
QUEUE_FULL = re.compile(r"队列已满|queue.*full", re.IGNORECASE)
# The queue position in a description: novicezk "排队中，前面还有3个任务", and English variants.
_QUEUE_AHEAD = re.compile(r"前面还有\s*(\d+)|(\d+)\s+(?:tasks?|jobs?)\s+ahead", re.IGNORECASE)
# new-api's 403 for a key that may not use a model: "该令牌无权访问模型 mj_blend" (or English).
MODEL_DENIED = re.compile(r"(?:无权访问模型|not allowed to (?:use|access) (?:the )?model)\s*:?\s*(\S*)", re.IGNORECASE)


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
