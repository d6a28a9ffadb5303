"""Images a trueai server stores: ``/submit/upload-discord-images``, and the images an imagine or
a video carries. Each is saved to its storage and served from there (``sim.uploads``).

trueai-org/midjourney-proxy, Controllers/SubmitController.cs ``ImagineDiscordImages`` and
Services/DiscordService.cs ``UploadAsync`` / ``UploadToStorageAsync``: every image of
``base64Array`` is stored as ``attachments/<yyyyMMdd>/<guid><suffix>`` and the answer is a
SubmitResultVO whose ``result`` is the list of their URLs. No task is made. new-api relays the
route (router/relay-router.go), bills it as ``mj_upload`` and sends trueai's answer back unchanged
(relay/mjproxy_handler.go; service/midjourney.go reads the list as a MidjourneyUploadResponse).
novicezk has no such route (Spring's 404).
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from .trueai_input import DataUrl, file_suffix, parse_images
from .wire import _json_response, _Outcome

# DiscordService.UploadAsync's refusal when storing fails; a link in base64Array has no bytes to
# store (UploadToStorageAsync gets null), so it fails the same way on a Discord account.
STORE_FAILED = "上传图片到云存储异常"


class _UploadMixin:
    """ProxySim's stored uploads: what trueai keeps, and the route that serves them."""

    def _store_upload(self, image: DataUrl) -> str | None:
        """Save one image as trueai's storage does; its URL, or None if it cannot be stored."""
        if image.data is None:
            return None
        day, name = time.strftime("%Y%m%d"), f"{uuid.uuid4().hex}{file_suffix(image)}"
        url = f"{self.base_url}/image/attachments/{day}/{name}"
        content_type = image.mime or "image/png"
        self._stored[f"{day}/{name}"] = (image.data, content_type)
        self.uploads.append((url, image.data, content_type))
        self._notify()
        return url

    def _do_upload(self, body: dict) -> _Outcome | web.Response:
        """trueai's /submit/upload-discord-images (Controllers/SubmitController.cs
        ImagineDiscordImages): no NewTask, so no user limits and no task."""
        images = body.get("base64Array")
        if not images:  # null or empty (Setting.EnableUserCustomUploadBase64 is on, as by default)
            return _Outcome(4, "base64 参数错误")
        try:
            parsed = parse_images(images)  # blank entries are dropped: all blank answers []
        except ValueError:
            return _Outcome(4, "base64格式错误")
        urls = []
        for image in parsed:
            url = self._store_upload(image)
            if url is None:
                # return Ok(Message.Of(code, description)): only these two fields (Models/Message.cs)
                return _json_response({"code": 9, "description": STORE_FAILED})
            urls.append(url)
        return _Outcome(1, "提交成功", urls)

    async def _attachment(self, request: web.Request) -> web.Response:
        """GET /mj/image/attachments/<day>/<name>: a stored upload, as its storage serves it (no auth)."""
        found = self._stored.get(f"{request.match_info['day']}/{request.match_info['name']}")
        if found is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = found
        return web.Response(body=data, headers={"Content-Type": content_type})
