"""The images and videos the sim serves: their URLs, their bytes, ``GET /mj/image/<name>``, and
downloads cut halfway (``cut_media``)."""

from __future__ import annotations

from aiohttp import web

from .images import (
    _GRID_IMAGE_NAME,
    _GRID_THUMBNAIL_NAME,
    _IMAGE_NAME,
    _THUMBNAIL_NAME,
    _VIDEO_NAME,
    _render,
    grid_colour,
    mp4_bytes,
    pad_png,
)
from .photo import photo_png, webp_bytes
from .timeline import GRID_ACTIONS

_UPSCALES = ("UPSCALE", "UPSCALE_HD")


class _MediaMixin:
    """ProxySim's media: final, preview, grid and video URLs and bytes, and the image route."""

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

    def grid_image_url(self, task_id: str, i: int) -> str:
        """Image ``i`` (0-3) of a grid alone: the ``url`` of trueai's ``imageUrls[i]``."""
        return f"{self.base_url}/image/{task_id}-grid-{_quadrant(i)}.png"

    def grid_thumbnail_url(self, task_id: str, i: int) -> str:
        """The ``thumbnail`` of trueai's ``imageUrls[i]`` (a small WebP)."""
        return f"{self.base_url}/image/{task_id}-grid-{_quadrant(i)}-thumb.webp"

    def grid_image_bytes(self, task_id: str, i: int) -> bytes:
        """The bytes at grid_image_url(): the grid's quadrant ``i`` alone (same size and colour)."""
        if self._actions.get(task_id) not in GRID_ACTIONS:
            raise KeyError(task_id)
        return _render(task_id, "single", _quadrant(i))

    def client_image_url(self, task_id: str) -> str:
        """The final image URL the bot is given: final_url(), or new-api's ``<base>/image/<id>``."""
        if self.flavour == "newapi":
            return f"{self.base_url}/image/{task_id}"
        return self.final_url(task_id)

    def preview_url(self, task_id: str, n: int = 1) -> str:
        return f"{self.base_url}/image/{task_id}-preview-{n}.png"

    def image_bytes(self, task_id: str) -> bytes:
        """The bytes served at the task's final image URL (grid, or one image for UPSCALE): with
        ``final_image_pixels``, an upscale is a photo-like PNG of that size (made once per task)."""
        if self._actions[task_id] not in _UPSCALES:
            return _render(task_id, "grid", pad_to=self.final_image_size)
        if self.final_image_pixels is None:
            return _render(task_id, "upscale", pad_to=self.final_image_size)
        photo = self._photos.get(task_id)
        if photo is None:
            photo = self._photos[task_id] = pad_png(photo_png(task_id, self.final_image_pixels), self.final_image_size)
        return photo

    def preview_bytes(self, task_id: str, n: int = 1) -> bytes:
        if task_id not in self._actions:
            raise KeyError(task_id)
        return _render(task_id, "preview", n)

    # ---- scripting: downloads cut halfway ---------------------------------

    def cut_media(self, task_id: str, times: int = 1) -> None:
        """Cut the next ``times`` downloads of the task's final media (its image, its video, or
        the videos of its batch; through new-api's ``/mj/image/<id>`` too): each announces the
        whole Content-Length, sends about half the bytes and closes the connection. Every
        download counts; after ``times`` cuts they are whole again. Calls add up."""
        if task_id not in self._actions:
            raise KeyError(task_id)
        if times < 1:
            raise ValueError("times must be at least 1")
        self._cuts[task_id] = self._cuts.get(task_id, 0) + times

    # ---- internals ------------------------------------------------------------

    async def _image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if self.flavour == "newapi" and name.isdigit():
            return await self._gateway_image(request, name)
        found = self._media_for(name)
        if found is None:
            return web.Response(status=404, text="Not Found")
        return await self._send_media(request, *found)

    async def _send_media(
        self, request: web.Request, data: bytes, content_type: str, final_of: str | None
    ) -> web.StreamResponse:
        """The media, whole, or cut halfway when cut_media() asked for it."""
        if final_of is None or not self._cuts.get(final_of):
            return web.Response(body=data, headers={"Content-Type": content_type})
        self._cuts[final_of] -= 1
        response = web.StreamResponse(headers={"Content-Type": content_type, "Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        if request.transport is not None:
            request.transport.close()  # what was written goes out first, then the connection ends
        return response

    def _image_for(self, name: str) -> bytes | None:
        """The bytes of ``<id>.png``, ``<id>-preview-<n>.png`` (or any served media); None if none."""
        found = self._media_for(name)
        return None if found is None else found[0]

    def _media_for(self, name: str) -> tuple[bytes, str, str | None] | None:
        """(bytes, content type, the task id if it is that task's final media) of an image, a grid's
        image ``<id>-grid-<i>.png`` and its thumbnail, a video thumbnail ``<id>_<i>.png`` or a video
        ``<id>.mp4`` / ``<id>_<i>.mp4``; None if the sim never made that task."""
        match = _IMAGE_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            task_id, preview = match.group(1), match.group(2)
            if preview:
                return self.preview_bytes(task_id, int(preview)), "image/png", None
            return self.image_bytes(task_id), "image/png", task_id
        match = _THUMBNAIL_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._actions:
            return _render(match.group(1), "preview", 100 + int(match.group(2))), "image/png", None
        match = _VIDEO_NAME.fullmatch(name)
        if match is not None and match.group(1) in self._videos:
            index = match.group(2)
            data = self.video_bytes(match.group(1), None if index is None else int(index))
            return data, "video/mp4", match.group(1)
        match = _GRID_IMAGE_NAME.fullmatch(name)
        if match is not None and self._actions.get(match.group(1)) in GRID_ACTIONS:
            return self.grid_image_bytes(match.group(1), int(match.group(2))), "image/png", None
        match = _GRID_THUMBNAIL_NAME.fullmatch(name)
        if match is not None and self._actions.get(match.group(1)) in GRID_ACTIONS:
            return webp_bytes(grid_colour(match.group(1), int(match.group(2)))), "image/webp", None
        return None


def _quadrant(i: int) -> int:
    if not isinstance(i, int) or not 0 <= i <= 3:
        raise ValueError(f"a grid has images 0-3, not {i!r}")
    return i
