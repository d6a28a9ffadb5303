"""Data shapes shared by the layers: the proxy's task, a stored job, and what a job's message shows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Defined there, used by every layer as part of the models: re-exported.
from bot.core.actions import Action as Action
from bot.core.actions import TaskButton as TaskButton
from bot.core.results import DESCRIBE_MARKS as DESCRIBE_MARKS
from bot.core.results import MAX_VIDEOS, MediaLink, MediaNote, is_video_url, shortened_prompts
from bot.core.results import PROMPT_MARKS as PROMPT_MARKS
from bot.core.results import ImageFile as ImageFile
from bot.core.results import describe_prompts as describe_prompts
from bot.core.results import image_identity as image_identity
from bot.core.results import message_link as message_link


def offered_prompts(job: Job) -> list[str]:
    """The prompts a finished /describe or /shorten answer offers to imagine ([] for other jobs)."""
    if job.action is Action.DESCRIBE:
        return describe_prompts(job.final_prompt or job.prompt_en or job.prompt)
    if job.action is Action.SHORTEN:
        return shortened_prompts(job.final_prompt)
    return []


class Status(str, enum.Enum):
    """The proxy's task status, plus the empty status new-api shows before its first poll."""

    UNKNOWN = ""
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"
    MODAL = "MODAL"

    @property
    def finished(self) -> bool:
        return self in (Status.SUCCESS, Status.FAILURE, Status.CANCEL)

    @classmethod
    def parse(cls, value: Any) -> Status:
        try:
            return cls(str(value or "").upper())
        except ValueError:
            return cls.UNKNOWN


class ProxyTask(BaseModel):
    """A task as the proxy reports it. Lenient: servers differ in which fields they send."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    action: str | None = None
    status: Status = Status.UNKNOWN
    progress: str | None = None
    prompt: str | None = None
    prompt_en: str | None = Field(default=None, alias="promptEn")
    description: str | None = None
    state: str | None = None
    image_url: str | None = Field(default=None, alias="imageUrl")
    fail_reason: str | None = Field(default=None, alias="failReason")
    submit_time: int | None = Field(default=None, alias="submitTime")
    start_time: int | None = Field(default=None, alias="startTime")
    finish_time: int | None = Field(default=None, alias="finishTime")
    properties: dict[str, Any] = Field(default_factory=dict)
    buttons: tuple[TaskButton, ...] = ()
    content_type: str | None = Field(default=None, alias="contentType")  # trueai: "video/mp4" for videos
    bot_type: str | None = Field(default=None, alias="botType")  # trueai's tasks only (TaskInfo.cs)
    video_url: str | None = Field(default=None, alias="videoUrl")
    video_urls: tuple[MediaLink, ...] = Field(default=(), alias="videoUrls")  # a batch: [{url, thumbnail}]
    image_urls: tuple[MediaLink, ...] = Field(default=(), alias="imageUrls")  # a grid's four images (trueai)

    @property
    def final_prompt(self) -> str | None:
        value = self.properties.get("finalPrompt")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def is_video(self) -> bool:
        """A video result (trueai's VIDEO task, or one video of a batch: ``imageUrl`` is the .mp4)."""
        return (
            (self.action or "").upper().startswith("VIDEO")
            or (self.content_type or "").lower().startswith("video/")
            or bool(self.video_url or self.video_urls)
            or is_video_url(self.image_url)
        )

    @property
    def videos(self) -> tuple[MediaLink, ...]:
        """The videos of a finished video task, at most four: each of a batch, or the one."""
        if not self.is_video:
            return ()
        links = self.video_urls
        if not links:
            url = self.video_url or self.image_url
            links = (MediaLink(url),) if url else ()
        return links[:MAX_VIDEOS]

    @property
    def grid_images(self) -> tuple[str, ...]:
        """A grid's four images, each alone (trueai's ``imageUrls``); () when not four of them."""
        if self.is_video or len(self.image_urls) != 4:
            return ()
        return tuple(link.url for link in self.image_urls)

    @field_validator("video_urls", "image_urls", mode="before")
    @classmethod
    def _media_links(cls, value: Any) -> tuple[MediaLink, ...]:
        if not isinstance(value, list):
            return ()
        return tuple(link for link in map(MediaLink.from_json, value) if link is not None)

    @field_validator("video_url", mode="before")
    @classmethod
    def _video_url(cls, value: Any) -> str | None:
        return value.strip() or None if isinstance(value, str) else None

    @field_validator("buttons", mode="before")
    @classmethod
    def _buttons(cls, value: Any) -> tuple[TaskButton, ...]:
        if not isinstance(value, list):
            return ()
        return tuple(button for button in map(TaskButton.from_json, value) if button is not None)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_string(cls, value: Any) -> str:
        # Some servers send the id as a JSON number; it is an opaque string to us.
        if value is None or value == "":
            raise ValueError("task without id")
        return str(value)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Status:
        return Status.parse(value)

    @field_validator("progress", "image_url", "fail_reason", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class SubmitAccepted:
    """A submit the proxy took: the new task's id, and how many jobs wait ahead of it (code 22)."""

    task_id: str
    queue_ahead: int | None = None
    code: int = 1


@dataclass(frozen=True)
class Job:
    """One proxy task the bot follows, as stored in SQLite."""

    task_id: str
    action: Action
    prompt: str
    owner_id: int
    channel_id: int
    guild_id: int | None = None
    parent_task_id: str | None = None
    parent_index: int | None = None
    message_id: int | None = None
    status: Status = Status.NOT_START
    progress: str | None = None
    queue_ahead: int | None = None
    image_url: str | None = None
    fail_reason: str | None = None
    prompt_en: str | None = None
    shown: str | None = None
    message_gone: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    buttons: tuple[TaskButton, ...] = ()  # the server's own buttons, when it lists them
    final_prompt: str | None = None
    parent_button: int | None = None  # which of the parent's server buttons made this job
    language: str | None = None  # the owner's language when they started it
    posting_at: float | None = None  # when posting its message began (NULL once the id is stored)
    nonce: str | None = None  # the submission's nonce, sent to the proxy as the task's `state`
    used_buttons: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    videos: tuple[MediaLink, ...] = ()  # a finished video task's clips
    grid_images: tuple[str, ...] = ()  # a finished grid's four images, each alone (trueai)
    media_note: MediaNote | None = None  # what happened to the result on its way to Discord

    @property
    def is_video(self) -> bool:
        return bool(self.videos)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def shows_final(self) -> bool:
        """The message already shows the finished job (its image is attached)."""
        return (self.shown or "").split("|", 1)[0] == Phase.DONE.value

    def with_changes(self, **changes: Any) -> Job:
        """A copy with ``changes``, like ``dataclasses.replace`` (which it was) but about 8 times
        faster: it is called several times for every task update. A copy's fields are the
        original's, so it is built by copying them rather than through ``__init__``."""
        if not _JOB_FIELDS.issuperset(changes):
            raise TypeError(f"Job has no field {sorted(set(changes) - _JOB_FIELDS)}")
        copy = object.__new__(type(self))
        fields_of = copy.__dict__
        fields_of.update(self.__dict__)
        fields_of.update(changes)
        return copy


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


BUTTON_MARK = "button"  # used_buttons entry for a server button: (BUTTON_MARK, position)


@dataclass(frozen=True)
class Submission:
    """A job about to be submitted: stored first, so a crash before the proxy's answer is stored
    can be repaired (the proxy's task carries ``nonce`` as its ``state``)."""

    nonce: str
    action: str
    prompt: str
    owner_id: int
    guild_id: int | None
    channel_id: int
    parent_task_id: str | None
    parent_index: int | None
    created_at: float
    parent_button: int | None = None
    language: str | None = None

    def to_job(self, task_id: str, now: float, **extra: Any) -> Job:
        """The job this submission became once the proxy accepted it as ``task_id``."""
        return Job(
            task_id=task_id,
            action=Action(self.action),
            prompt=self.prompt,
            owner_id=self.owner_id,
            channel_id=self.channel_id,
            guild_id=self.guild_id,
            parent_task_id=self.parent_task_id,
            parent_index=self.parent_index,
            parent_button=self.parent_button,
            language=self.language,
            status=Status.SUBMITTED,
            nonce=self.nonce,
            created_at=now,
            updated_at=now,
            **extra,
        )


LOCAL_REASON_PREFIX = "mjbot:"


def local_reason(name: str, **params: str) -> str:
    """A failure reason of the bot's own, stored so it can be shown in each member's language:
    ``mjbot:deadline?duration=15 min`` is the catalogue's ``fail.deadline`` with its parameters."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{LOCAL_REASON_PREFIX}{name}" + (f"?{query}" if query else "")


def parse_local_reason(reason: str | None) -> tuple[str, dict[str, str]] | None:
    if not reason or not reason.startswith(LOCAL_REASON_PREFIX):
        return None
    name, _, query = reason[len(LOCAL_REASON_PREFIX) :].partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return f"fail.{name}", params


class Phase(str, enum.Enum):
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NEEDS_PROMPT = "needs_prompt"  # the task waits in MODAL for a prompt


@dataclass(frozen=True)
class Display:
    """What a job's Discord message shows: the Discord layer renders it, the jobs service compares
    it with what was shown last to decide whether an edit is needed."""

    phase: Phase
    progress: str | None = None
    queue_ahead: int | None = None
    image_url: str | None = None
    fail_reason: str | None = None
    used_buttons: tuple[tuple[str, int], ...] = ()

    def signature(self) -> str:
        used = ",".join(f"{a}{i}" for a, i in self.used_buttons)
        return "|".join(
            str(part or "")
            for part in (
                self.phase.value,
                self.progress,
                self.queue_ahead,
                self.image_url,
                self.fail_reason,
                used,
            )
        )

    @classmethod
    def of(cls, job: Job) -> Display:
        used = tuple(sorted(job.used_buttons))
        if job.status is Status.SUCCESS:
            return cls(Phase.DONE, image_url=job.image_url, used_buttons=used)
        if job.status in (Status.FAILURE, Status.CANCEL):
            return cls(Phase.FAILED, fail_reason=job.fail_reason)
        if job.status is Status.MODAL:
            return cls(Phase.NEEDS_PROMPT)
        if job.status is Status.IN_PROGRESS and job.progress:
            return cls(Phase.RUNNING, progress=job.progress, image_url=job.image_url)
        if job.queue_ahead:
            return cls(Phase.QUEUED, queue_ahead=job.queue_ahead)
        return cls(Phase.WAITING)
