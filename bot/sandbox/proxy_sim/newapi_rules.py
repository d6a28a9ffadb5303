"""new-api's own rules, apart from its flavour: the key it reads, how it turns a trueai customId
into an action (service/midjourney.go), its request ids and the web UI page it answers unknown
paths with (router/web-router.go)."""

from __future__ import annotations

import random
import time
from typing import Any


def newapi_key(headers: dict[str, str]) -> str:
    """The key new-api reads: mj-api-secret first, else Authorization; "Bearer " and "sk-" stripped."""
    key = headers.get("mj-api-secret") or headers.get("authorization") or ""
    return key.removeprefix("Bearer ").removeprefix("sk-")


class NewApiReject(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def newapi_action(custom_id: Any) -> str:
    """service/midjourney.go CoverPlusActionToNormalAction: the action new-api reads from a
    customId (the 2nd or, after "JOB", the 3rd "::" part); anything else is refused."""
    if not isinstance(custom_id, str) or not custom_id:
        raise NewApiReject("custom_id_is_required")
    parts = custom_id.split("::")
    if len(parts) < 3:
        raise NewApiReject(f"unknown_action:{custom_id}")  # Go would index out of range
    action = parts[2] if parts[1] == "JOB" else parts[1]  # "Job" (PicReader) is not "JOB"
    if not action:
        raise NewApiReject("unknown_action")
    if "upsample" in action:  # U1-U4 and Upscale (Subtle/Creative) alike
        if len(parts) < 4 or not parts[3].lstrip("-").isdigit():
            raise NewApiReject("index_parse_failed")
        return "UPSCALE"
    if "variation" in action:
        if action == "variation":
            if len(parts) < 4 or not parts[3].lstrip("-").isdigit():
                raise NewApiReject("index_parse_failed")
            return "VARIATION"
        return {"low_variation": "LOW_VARIATION", "high_variation": "HIGH_VARIATION"}.get(action, "")
    if "pan" in action:
        return "PAN"
    if "reroll" in action:
        return "REROLL"
    known = {"Outpaint": "ZOOM", "CustomZoom": "CUSTOM_ZOOM", "Inpaint": "INPAINT"}
    if action in known:
        return known[action]
    raise NewApiReject(f"unknown_action:{custom_id}")


# The action new-api gives each submit route (service/midjourney.go GetMjRequestModel; the model
# billed is "mj_" + the action in lower case: mj_shorten for /submit/shorten).
SUBMIT_ACTIONS = {
    "imagine": "IMAGINE",
    "describe": "DESCRIBE",
    "blend": "BLEND",
    "modal": "MODAL",
    "video": "VIDEO",
    "upload-discord-images": "UPLOAD",
    "shorten": "SHORTEN",
}


def newapi_request_id() -> str:
    """common.NewRequestId's shape: time string, nanoseconds, 8 random characters."""
    now = time.time_ns()
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return time.strftime("%Y%m%d%H%M%S") + str(now % 10**9) + "".join(random.choice(alphabet) for _ in range(8))


# router/web-router.go: every path no route claims gets the web UI's index.html with HTTP 200
# (except /v1, /api and /assets). A stand-in for the built dashboard page.
NEWAPI_INDEX_HTML = (
    '<!doctype html><html lang="zh"><head><meta charset="UTF-8" />'
    '<link rel="icon" href="/logo.png" /><meta name="viewport" content="width=device-width, initial-scale=1.0" />'
    '<meta name="description" content="OpenAI 接口聚合管理，支持多种渠道包括 Azure，可用于二次分发管理 key，仅单可执行文件，已打包好 Docker 镜像，一键部署，开箱即用" />'
    "<title>New API</title>"
    '<script type="module" crossorigin src="/assets/index.js"></script>'
    '<link rel="stylesheet" crossorigin href="/assets/index.css"></head>'
    '<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div></body></html>'
)
