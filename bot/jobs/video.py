"""Making videos: /animate, and Animate on an upscale where the server cannot press that button.

Both go to the server's ``/submit/video`` (trueai Controllers/SubmitController.cs Video, relayed by
new-api). A server without it (novicezk: 404) or with video off (trueai: 视频功能未启用) gets the
member a clear :class:`VideoUnsupported`. What comes back is a VIDEO task, tracked like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.access import AccessPolicy, Requester
from bot.core.config import Settings
from bot.core.errors import (
    AnimateNeedsOneImage,
    BadVideoBatch,
    ImageTooLarge,
    JobNotReady,
    NotAnImageJob,
    NotYourImage,
    ProxyEndpointMissing,
    SubmitRefused,
    VideoUnsupported,
)
from bot.core.models import Action, ImageFile, Job, Status, SubmitAccepted
from bot.core.prompt import check_prompt, prompt_words
from bot.jobs.deliver import Delivery
from bot.jobs.media import MAX_IMAGE_BYTES
from bot.jobs.submit import Submitter
from bot.media import MediaError
from bot.proxy.client import ProxyClient
from bot.storage import Store

VIDEO_BATCHES = (1, 2, 4)
# trueai refuses a video without a prompt ("Prompt 不能为空"); /animate's prompt is optional, so an
# image alone is sent with its job's words, or these.
DEFAULT_MOTION_PROMPT = "natural motion"
# trueai's refusal when its admin turned video off (Setting.EnableVideo).
VIDEO_DISABLED = re.compile(r"视频.*(未启用|未开启|禁用)|video.*(disabled|not enabled)", re.IGNORECASE)
# new-api cannot turn a video button's customId into an action (middleware/distributor.go).
UNKNOWN_ACTION = "unknown_action"


@dataclass(frozen=True)
class AnimateRequest:
    """What /animate asks for: an image or one of the member's jobs (``job_id``), and the rest."""

    image: ImageFile | None = None
    job_id: str | None = None
    prompt: str = ""
    motion: str = "low"
    end_image: ImageFile | None = None
    loop: bool = False
    batch: int = 4


class Videos:
    def __init__(
        self,
        settings: Settings,
        proxy: ProxyClient,
        store: Store,
        policy: AccessPolicy,
        submitter: Submitter,
        delivery: Delivery,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.store = store
        self.policy = policy
        self.submitter = submitter
        self.delivery = delivery
        self.media = delivery.media

    async def animate(self, request: AnimateRequest, who: Requester, *, origin: object | None = None) -> Job:
        self.policy.check_start(who)
        if request.batch not in VIDEO_BATCHES:
            raise BadVideoBatch(f"batch of {request.batch}")
        if (request.image is None) == (request.job_id is None):
            raise AnimateNeedsOneImage("give an image or a job, not both or neither")
        prompt = check_prompt(request.prompt, banned_words=self.settings.access.banned_words) if request.prompt else ""
        if request.image is not None:
            start, sent = request.image.as_data_url(), prompt or DEFAULT_MOTION_PROMPT
        else:
            job = await self._own_image_job(request.job_id or "", who)
            start, sent = await self.image_of(job), prompt or prompt_words(job.prompt) or DEFAULT_MOTION_PROMPT
        end = request.end_image.as_data_url() if request.end_image else None

        async def submit(nonce: str) -> SubmitAccepted:
            return await self.submit_video(
                sent, start, motion=request.motion, end_image=end, loop=request.loop, batch=request.batch, nonce=nonce
            )

        return await self.submitter.submit_new(Action.VIDEO, prompt, who, submit, origin=origin)

    async def submit_video(
        self,
        prompt: str,
        image: str,
        *,
        motion: str,
        nonce: str,
        end_image: str | None = None,
        loop: bool = False,
        batch: int = 4,
    ) -> SubmitAccepted:
        """``/submit/video``, a server without video told apart from any other refusal."""
        try:
            return await self.proxy.submit_video(
                prompt,
                image=image,
                end_image=end_image,
                motion=motion,
                loop=loop,
                batch_size=batch,
                state=nonce,
                notify_hook=self.submitter.notify_hook,
            )
        except ProxyEndpointMissing as exc:
            raise VideoUnsupported(f"the proxy has no /submit/video: {exc}") from None
        except SubmitRefused as exc:
            if VIDEO_DISABLED.search(exc.description or ""):
                raise VideoUnsupported(f"the proxy refused video: {exc.description}") from None
            raise

    async def animate_instead(self, parent: Job, motion: str, refused: SubmitRefused, nonce: str) -> SubmitAccepted:
        """Animate (High/Low motion) under an upscale, which new-api refuses as a button: the same
        video through its ``/submit/video``. Any other refusal stands."""
        if UNKNOWN_ACTION not in (refused.description or ""):
            raise refused
        image = await self.image_of(parent)
        return await self.submit_video(
            prompt_words(parent.prompt) or DEFAULT_MOTION_PROMPT, image, motion=motion, nonce=nonce
        )

    async def image_of(self, job: Job) -> str:
        """A finished image job's image as /submit/video takes it: its link when the link lasts,
        else its bytes (from its message, whose files do not expire, or the proxy's link, which may
        not be reachable from Midjourney), fitted to what a member may attach: trueai takes
        30,000,000 bytes of request in all, and base64 adds a third."""
        assert job.image_url
        if self.media.lasts(job.image_url):
            return job.image_url
        posted = [f for f in await self.delivery.final_media(job) if (f.content_type or "").startswith("image/")]
        if posted:
            data, content_type = posted[0].data, posted[0].content_type
        else:
            data, content_type = await self.proxy.download_image(job.image_url, max_bytes=MAX_IMAGE_BYTES)
        limit = int(self.settings.limits.max_attachment_mb * 1024 * 1024)
        if len(data) > limit:
            try:
                fitted = await self.media.worker.fit(data, limit)
            except MediaError as exc:
                limit_mb = f"{self.settings.limits.max_attachment_mb:g}"
                raise ImageTooLarge(f"job {job.task_id}'s image cannot be sent: {exc}", limit_mb=limit_mb) from None
            data, content_type = fitted.data, fitted.content_type
        return ImageFile("job", data, content_type).as_data_url()

    async def _own_image_job(self, task_id: str, who: Requester) -> Job:
        """``job:<id>`` of /animate: one of the member's finished single images (admins: anyone's)."""
        job = await self.store.get_job(task_id.strip())
        job = self.policy.check_owner(who, job, task_id, "animate", refusal=NotYourImage)
        if job.status is not Status.SUCCESS:
            raise JobNotReady(f"job {task_id} is {job.status.value}", task_id=task_id)
        if job.is_video or job.action.makes_grid or job.action is Action.DESCRIBE or not job.image_url:
            raise NotAnImageJob(f"job {task_id} is {job.action.value}, not one image")
        return job
