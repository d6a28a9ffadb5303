"""A finished job's result as Discord will take it: the files to attach, within the channel's upload
limit, and a note of what was done to fit them.

- An image over the limit is re-encoded (in worker processes, off the event loop) to WebP or JPEG of
  the same pixel size; its original is linked only when its host's links do not expire.
- A video batch (up to four clips) is attached whole or not at all. A clip over the limit (Discord
  checks each file alone) has it linked if its host's links last, else its first frame is posted
  with a note saying the video is too large.

A download that fails, or a worker that timed out or died, raises, so delivery retries it; nothing
is half-posted. What cannot be made to fit is final: linked or said.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.core.errors import ImageTooLarge
from bot.core.models import ImageFile, Job, MediaNote
from bot.core.results import safe_link
from bot.media import MediaError, MediaTimeout, MediaWorker, MediaWorkerClosed, MediaWorkerCrashed
from bot.proxy.client import ProxyClient

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 64 * 1024 * 1024  # a final image larger than this is not downloaded at all
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}
# The worker's passing troubles: the result is tried again, not given up as too large.
_PASSING = (MediaTimeout, MediaWorkerCrashed, MediaWorkerClosed)


@dataclass(frozen=True)
class Prepared:
    files: tuple[ImageFile, ...] = ()
    note: MediaNote | None = None


class FinalMedia:
    def __init__(self, proxy: ProxyClient, worker: MediaWorker, lasting_hosts: Sequence[str]) -> None:
        self.proxy = proxy
        self.worker = worker
        self._lasting = [pattern.lower() for pattern in lasting_hosts]

    def lasts(self, url: str | None) -> bool:
        """Whether ``url`` may be offered in a message because its links keep working: its host is
        one of ``lasting_media_hosts``, and it is a plain link (see :func:`safe_link`)."""
        link = safe_link(url)
        host = (urlsplit(link or "").hostname or "").lower()
        return bool(host) and any(fnmatch.fnmatch(host, pattern) for pattern in self._lasting)

    async def prepare(self, job: Job, limit: int) -> Prepared:
        """What to attach for ``job``'s result. Raises the download's error (ProxyError) to be retried."""
        if job.is_video:
            return await self._videos(job, limit)
        assert job.image_url
        return await self._image(job, job.image_url, limit)

    def gave_up(self, job: Job) -> Prepared:
        """Downloads kept failing: post without the result, linking it where the link lasts."""
        urls = [link.url for link in job.videos] or [job.image_url or ""]
        return Prepared((), MediaNote("download_failed", links=tuple(url for url in urls if self.lasts(url))))

    async def _image(self, job: Job, url: str, limit: int, *, note_kind: str | None = None) -> Prepared:
        try:
            data, content_type = await self.proxy.download_image(url, max_bytes=MAX_IMAGE_BYTES)
        except ImageTooLarge:
            log.info("task %s: its image is over %d bytes; not downloaded", job.task_id, MAX_IMAGE_BYTES)
            return self._too_large(job, [url], None)
        if len(data) <= limit:
            note = MediaNote(note_kind or "attached", attached=1)
            return Prepared((ImageFile(_filename(job, content_type), data, content_type),), note)
        try:
            fitted = await self.worker.fit(data, limit)
        except _PASSING:
            raise
        except MediaError as exc:
            log.warning(
                "task %s: its image of %d bytes cannot be made to fit %d (%s)", job.task_id, len(data), limit, exc
            )
            return self._too_large(job, [url], len(data))
        log.info(
            "task %s: image re-encoded from %d to %d bytes (%s) to fit %d",
            job.task_id,
            len(data),
            len(fitted.data),
            fitted.format,
            limit,
        )
        note = MediaNote(
            note_kind or "reencoded",
            format=fitted.format,
            size=len(fitted.data),
            original=len(data),
            links=(url,) if self.lasts(url) else (),
            attached=1,
        )
        return Prepared((ImageFile(_filename(job, fitted.content_type), fitted.data, fitted.content_type),), note)

    async def _videos(self, job: Job, limit: int) -> Prepared:
        # Discord checks each file against the limit, not a message's files together.
        files: list[ImageFile] = []
        for n, link in enumerate(job.videos, start=1):
            try:
                data, content_type = await self.proxy.download_image(link.url, max_bytes=limit)
            except ImageTooLarge:
                return await self._video_too_large(job, limit)
            content_type = content_type if (content_type or "").split(";")[0] in _EXTENSIONS else "video/mp4"
            suffix = f"_{n}" if len(job.videos) > 1 else ""
            files.append(ImageFile(_filename(job, content_type, suffix), data, content_type))
        return Prepared(tuple(files), MediaNote("attached", attached=len(files)))

    async def _video_too_large(self, job: Job, limit: int) -> Prepared:
        urls = [link.url for link in job.videos]
        log.info("task %s: its videos are over the upload limit of %d bytes", job.task_id, limit)
        if all(self.lasts(url) for url in urls):
            return Prepared((), MediaNote("linked", links=tuple(urls)))
        lasting = tuple(url for url in urls if self.lasts(url))
        thumbnail = job.videos[0].thumbnail
        if thumbnail:
            frame = await self._image(job, thumbnail, limit, note_kind="video_too_large")
            if frame.files:
                return Prepared(frame.files, MediaNote("video_too_large", links=lasting, attached=len(frame.files)))
        return Prepared((), MediaNote("video_too_large", links=lasting))

    def _too_large(self, job: Job, urls: list[str], size: int | None) -> Prepared:
        lasting = tuple(url for url in urls if self.lasts(url))
        return Prepared((), MediaNote("linked" if lasting else "too_large", size=size, links=lasting))


def _filename(job: Job, content_type: str | None, suffix: str = "") -> str:
    extension = _EXTENSIONS.get((content_type or "").split(";")[0].strip(), "png")
    return f"{job.action.value.lower()}_{job.task_id}{suffix}.{extension}"
