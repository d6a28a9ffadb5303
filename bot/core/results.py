"""A finished task's result as it travels: files to attach, the links of a video batch or of a
grid's four images, the note of what the bot did to post it, a describe's four prompts, and links."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_VIDEOS = 4  # a video batch is at most four clips; Discord shows them in one message


def is_video_url(url: str | None) -> bool:
    return urlsplit(url or "").path.lower().endswith((".mp4", ".webm", ".mov"))


@dataclass(frozen=True)
class MediaLink:
    """A video of a batch (``videoUrls``: ``{url, thumbnail}``) or one image of a grid (``imageUrls``)."""

    url: str
    thumbnail: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "thumbnail": self.thumbnail} if self.thumbnail else {"url": self.url}

    @classmethod
    def from_json(cls, data: Any) -> MediaLink | None:
        """A link from a string or ``{url, thumbnail}``; None for anything else."""
        if isinstance(data, str):
            return cls(data.strip()) if data.strip() else None
        if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not data["url"].strip():
            return None
        thumbnail = data.get("thumbnail")
        return cls(data["url"].strip(), thumbnail.strip() or None if isinstance(thumbnail, str) else None)


@dataclass(frozen=True)
class ImageFile:
    filename: str
    data: bytes
    content_type: str | None = None

    def as_data_url(self) -> str:
        mime = self.content_type or "image/png"
        return f"data:{mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class MediaNote:
    """How a result was posted: ``attached`` as it was, ``reencoded`` (to ``format``, ``size`` bytes,
    from ``original`` bytes), ``linked`` (too large for the server: ``links`` do not expire),
    ``video_too_large`` (its first frame posted instead, if it has one), ``too_large`` (nothing could
    be posted), ``download_failed``. ``attached``: how many files the message carries. Kept with the
    job, so later edits of its message keep its files and say it too."""

    kind: str
    format: str | None = None
    size: int | None = None
    original: int | None = None
    links: tuple[str, ...] = ()
    attached: int = 0

    def to_json(self) -> str:
        data = {"kind": self.kind, "format": self.format, "size": self.size, "original": self.original}
        data.update(links=list(self.links), attached=self.attached)
        return json.dumps({key: value for key, value in data.items() if value not in (None, [], 0)})

    @classmethod
    def from_json(cls, text: str | None) -> MediaNote | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(
            kind=str(data["kind"]),
            format=data.get("format"),
            size=data.get("size"),
            original=data.get("original"),
            links=tuple(data.get("links") or ()),
            attached=int(data.get("attached") or 0),
        )


MAX_NOTE_LINK = 300  # longer links are left out of a note: a message has 2,000 characters
# What a link in a message must not contain: it is shown as <link>, so nothing that could end it
# or start Markdown of its own, and no whitespace or control characters.
_UNSAFE_IN_LINK = re.compile(r"[\s<>()\[\]\\\"'`]|[\x00-\x1f\x7f]")


def safe_link(url: str | None) -> str | None:
    """``url`` as it may be shown in a message (http(s), a host, no user part, short, nothing that
    could close ``<…>`` or smuggle a masked link), or None."""
    if not url or len(url) > MAX_NOTE_LINK or _UNSAFE_IN_LINK.search(url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return urlunsplit(parts)


DESCRIBE_MARKS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
PROMPT_MARKS = (*DESCRIBE_MARKS, "5️⃣")  # /shorten offers five
_KEYCAP_1_TO_5 = re.compile(r"\s*([1-5])\ufe0f?\u20e3\s*")
_KEYCAP = re.compile(r"\s*([1-4])\ufe0f?\u20e3\s*")


def describe_prompts(text: str | None) -> list[str]:
    """The four prompts of a /describe answer: numbered 1️⃣-4️⃣ (with or without the emoji
    variation selector), separated by blank lines of either kind, or only by blank lines."""
    if not text:
        return []
    parts = _KEYCAP.split(text.replace("\r\n", "\n"))
    if len(parts) > 1:
        numbered = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
        prompts = [numbered.get(n, "") for n in range(1, 5)]
    else:
        prompts = re.split(r"\n\s*\n", text)
    return [" ".join(p.split()) for p in prompts if p.strip()][:4]


def shortened_prompts(text: str | None) -> list[str]:
    """The prompts of a /shorten answer: numbered 1️⃣-5️⃣ after "Shortened prompts" (Midjourney
    first lists the important tokens)."""
    if not text:
        return []
    _, found, rest = text.partition("Shortened prompts")
    parts = _KEYCAP_1_TO_5.split(rest if found else text)
    numbered = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    return [" ".join(numbered[n].split()) for n in sorted(numbered) if numbered[n].strip()][:5]


def image_identity(url: str | None) -> str | None:
    """What an image URL points at, without new-api's ``?rand=`` that changes on every read: two
    reads of an unchanged preview compare equal, so they cost no Discord edit."""
    if not url or "rand=" not in url:
        return url
    parts = urlsplit(url)
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "rand"])
    return urlunsplit(parts._replace(query=query))


def message_link(guild_id: int | None, channel_id: int, message_id: int | None) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id or ''}".rstrip("/")
