"""The images and videos the sim serves: their URLs, their bytes, and ``GET /mj/image/<name>``."""

from __future__ import annotations

from aiohttp import web

from .images import _IMAGE_NAME, _THUMBNAIL_NAME, _VIDEO_NAME, _render, mp4_bytes


class _MediaMixin:
    """ProxySim's media: final, preview and video URLs and bytes, and the image route."""

    def final_url(self, task_id: str) -> str:
        """The result's URL: ``<id>.png``, or ``<id>.mp4`` for a video (trueai's VIDEO imageUrl)."""
        if task_id in self._videos:
            return self.video_url(task_id)
        return f"{self.base_url}/image/{task_id}.png"

    def video_url(self, task_id: str, i: int | None = None) -> str:
        """A video the sim serves: the task's own (``<id>.mp4``), or video ``i`` (0-3) of a batch."""
        return f"{self.base_url}/image/{task_id}.mp4" if i is None else f"{self.base_url}/image/{task_id}_{i}.mp4"

    def thumbnail_url(self, task_id: str, i: int = 0) -> str:
        return f"{self.base_url}/image/{task_id}_{i}.png"

    def video_bytes(self, task_id: str, i: int | None = None) -> bytes:
        if task_id not in self._actions:
            raise KeyError(task_id)
        return mp4_bytes(f"{task_id}:{'' if i is None else i}")

    def client_image_url(self, task_id: str) -> str:
        """The final image URL the bot is given: final_url(), or new-api's ``<base>/image/<id>``."""
        if self.flavour == "newapi":
            return f"{self.base_url}/image/{task_id}"
        return self.final_url(task_id)

    def preview_url(self, task_id: str, n: int = 1) -> str:
        return f"{self.base_url}/image/{task_id}-preview-{n}.png"

    def image_bytes(self, task_id: str) -> bytes:
        """The bytes served at the task's final image URL (grid, or one image for UPSCALE)."""
        kind = "upscale" if self._actions[task_id] in ("UPSCALE", "UPSCALE_HD") else "grid"
        return _render(task_id, kind, pad_to=self.final_image_size)

    def preview_bytes(self, task_id: str, n: int = 1) -> bytes:
        if task_id not in self._actions:
            raise KeyError(task_id)
        return _render(task_id, "preview", n)

    async def _image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.flavour == "newapi" and name.isdigit():
            return self._gateway_image(name)
        found = self._media_for(name)
        if found is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    def _image_for(self, name: str) -> bytes | None:
        """The bytes of ``<id>.png``, ``<id>-preview-<n>.png`` (or any served media); None if none."""
        found = self._media_for(name)
        return None if found is None else found[0]

    def _media_for(self, name: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of an image, a video thumbnail ``<id>_<i>.png`` or a video
        ``<id>.mp4`` / ``<id>_<i>.mp4``; None if the sim never made that task."""
        match = _IMAGE_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            task_id, preview = match.group(1), match.group(2)
            data = self.preview_bytes(task_id, int(preview)) if preview else self.image_bytes(task_id)
            return data, "image/png"
        match = _THUMBNAIL_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            return _render(match.group(1), "preview", 100 + int(match.group(2))), "image/png"
        match = _VIDEO_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._videos:
            index = match.group(2)
            return self.video_bytes(match.group(1), None if index is None else int(index)), "video/mp4"
        return None
