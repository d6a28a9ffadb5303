"""new-api's side of the sim: its copy of each relayed task, refreshed only by its polls of
the upstream, and the images it relays at ``/mj/image/<id>``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from .tasks import SimTask, _now_ms
from .timeline import FAILURE
from .wire import _json_response


class _GatewayMixin:
    """ProxySim's new-api gateway: gateway_poll() and the copies it keeps."""

    def gateway_poll(self) -> list[str]:
        """new-api's poll of its upstream, now; returns the ids it read.

        Every copy not yet at progress "100%" is refreshed from the upstream task as it
        is now (copies of tasks the upstream forgot stay as they were). In poll mode the
        upstream tasks read then move one step, as after any read.
        """
        if self.flavour != "newapi":
            raise RuntimeError("only flavour='newapi' has a gateway poll")
        read = []
        for task_id, copy in self.gateway_tasks.items():
            task = self.tasks.get(task_id)
            if copy["progress"] != "100%" and task is not None:
                self._gateway_refresh(copy, task)
                read.append(task)
        self.gateway_polls += 1
        if self.mode == "poll":
            for task in read:
                self._auto_advance(task)
        self._notify()
        return [task.id for task in read]

    # ---- internals: new-api's copies ----------------------------------------

    def _gateway_track(self, task_id: str) -> None:
        """new-api records a task it relayed: status "" and "0%" until its first poll."""
        task = self.tasks.get(task_id)
        if task is None or task_id in self.gateway_tasks:
            return  # a /submit/modal answers with the id new-api already holds
        self.gateway_tasks[task_id] = {
            "id": task_id,
            "action": task.action,
            "customId": task.custom_id or "",
            "botType": "",
            "prompt": task.prompt,
            "promptEn": "",
            "description": "",
            "state": task.state or "",
            "submitTime": _now_ms(),
            "startTime": 0,
            "finishTime": 0,
            "imageUrl": "",
            "videoUrl": "",
            "videoUrls": None,
            "status": "",
            "progress": "0%",
            "failReason": "",
            "buttons": None,
            "maskBase64": "",
            "properties": None,
        }
        self._gateway_images[task_id] = ""
        self._notify()

    def _gateway_refresh(self, copy: dict[str, Any], task: SimTask) -> None:
        """What new-api's poll copies from the upstream's Task (Go: nulls become "" and 0)."""
        upstream = self._upstream.task_json(task)
        for key, empty in (
            ("status", ""),
            ("progress", ""),
            ("promptEn", ""),
            ("state", ""),
            ("failReason", ""),
            ("submitTime", 0),
            ("startTime", 0),
            ("finishTime", 0),
        ):
            copy[key] = upstream.get(key) or empty
        properties = upstream.get("properties")
        if properties is not None:  # new-api keeps only these two
            copy["properties"] = {
                "finalPrompt": properties.get("finalPrompt") or "",
                "finalZhPrompt": properties.get("finalZhPrompt") or "",
            }
        if upstream.get("buttons") is not None:
            copy["buttons"] = [dict(button) for button in upstream["buttons"]]
        if upstream.get("videoUrl"):
            copy["videoUrl"] = upstream["videoUrl"]
        if upstream.get("videoUrls"):
            copy["videoUrls"] = [{"url": item["url"]} for item in upstream["videoUrls"]]  # dto.ImgUrls
        raw = upstream.get("imageUrl") or ""
        self._gateway_images[task.id] = raw
        copy["imageUrl"] = f"{self.base_url}/image/{task.id}" if raw else ""
        if copy["failReason"] or copy["status"] == FAILURE:
            copy["progress"] = "100%"  # and it is never polled again

    def _rand_ns(self) -> int:
        """time.Now().UnixNano(), made strictly increasing so two reads never share one."""
        self._last_rand = max(time.time_ns(), self._last_rand + 1)
        return self._last_rand

    async def _run_gateway(self) -> None:
        while True:
            await asyncio.sleep(self.gateway_poll_s)
            self.gateway_poll()

    async def _gateway_image(self, request: web.Request, task_id: str) -> web.StreamResponse:
        """new-api's /mj/image/{id}: relays the upstream image its copy points at (no auth), with
        the upstream's Content-Type (an .mp4 too); a cut upstream download is cut here as well
        (relay/mjproxy_handler.go RelayMidjourneyImage streams it with io.Copy)."""
        if task_id not in self.gateway_tasks:
            return _json_response({"error": "midjourney_task_not_found"}, status=400)
        raw = self._gateway_images.get(task_id) or ""
        if not raw:
            return _json_response({"error": "image_url_not_found"}, status=404)
        prefix = self.base_url + "/image/"
        found = self._media_for(raw[len(prefix) :]) if raw.startswith(prefix) else None
        if found is None:
            return _json_response({"error": f"fetch image failed: {raw}"}, status=502)
        return await self._send_media(request, *found)
