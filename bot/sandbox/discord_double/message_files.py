"""A message's files: storing uploads, resolving a payload's ``attachments`` array, ``attachment://`` in embeds.

``MessageFiles`` is mixed into ``MessageStore`` (messages.py); sizes and counts are checked here,
before anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from .errors import ApiError, invalid_form
from .media import describe
from .records import AttachmentRecord, UploadedFile, snapshot
from .validation import MAX_ATTACHMENTS


def too_many_attachments() -> ApiError:
    return ApiError(400, 30015, f"Maximum number of attachments in a message reached ({MAX_ATTACHMENTS})")


class MessageFiles:
    """The files half of ``MessageStore``."""

    # Provided by State.
    upload_limit: Callable[[int], int]
    base_url: str
    files: dict[int, AttachmentRecord]
    new_id: Callable[[], int]

    def store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> AttachmentRecord:
        attachment_id = self.new_id()
        # Discord names the type itself (discord.py always uploads as octet-stream) and measures media.
        media = describe(filename, data, content_type)
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        record = AttachmentRecord(
            id=attachment_id,
            filename=filename,
            content_type=media.content_type,
            data=data,
            url=url,
            proxy_url=url.replace("/attachments/", "/media/attachments/", 1),
            description=description,
            ephemeral=ephemeral,
            width=media.width,
            height=media.height,
        )
        self.files[attachment_id] = record
        return record

    def _attachments(
        self,
        payload: dict[str, Any],
        files: list[UploadedFile],
        channel_id: int,
        existing: Iterable[AttachmentRecord] = (),
    ) -> tuple[AttachmentRecord, ...]:
        """Resolve a payload's ``attachments`` array against uploads and kept attachments.

        New files are referenced by their upload index (``files[n]``); kept ones by their id.
        Without an ``attachments`` array, existing attachments stay and uploads are appended.
        Checked before anything is stored: every file against the channel's upload limit (per
        file, by the guild's boost tier: 413 Request entity too large), and the message's
        attachments against Discord's 10 (an ``attachments`` array of more is refused by
        ``validate_message``; more uploads than that, or an edit adding past 10, get 30015).
        """
        limit = self.upload_limit(channel_id)
        if any(upload.size > limit for upload in files):
            raise ApiError(413, 40005, "Request entity too large")
        if len(files) > MAX_ATTACHMENTS:
            raise too_many_attachments()
        uploads = dict(enumerate(files))
        existing_by_id = {str(a.id): a for a in existing}
        if payload.get("attachments") is None:
            if len(existing_by_id) + len(files) > MAX_ATTACHMENTS:
                raise too_many_attachments()
            new = [self.store_file(channel_id, f.filename, f.data, f.content_type) for f in files]
            return (*existing_by_id.values(), *new)

        # Resolved first, stored once all is known to be accepted.
        plan: list[AttachmentRecord | tuple[UploadedFile, str, str | None]] = []
        used: set[int] = set()
        for index, item in enumerate(payload["attachments"]):
            key = str(item.get("id"))
            if key in existing_by_id:
                plan.append(existing_by_id[key])
                continue
            upload = uploads.get(int(key)) if key.isdigit() else None
            if upload is None:
                raise invalid_form(f"attachments.{index}", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {key}")
            used.add(int(key))
            plan.append((upload, item.get("filename") or upload.filename, item.get("description")))
        # Discord still attaches uploads the array forgot to mention.
        plan += [(f, f.filename, None) for i, f in uploads.items() if i not in used]
        if len(plan) > MAX_ATTACHMENTS:
            raise too_many_attachments()
        return tuple(
            item
            if isinstance(item, AttachmentRecord)
            else self.store_file(channel_id, item[1], item[0].data, item[0].content_type, description=item[2])
            for item in plan
        )

    @staticmethod
    def _resolve_embed_urls(
        embeds: list[dict[str, Any]], attachments: Iterable[AttachmentRecord]
    ) -> list[dict[str, Any]]:
        """Replace ``attachment://name`` in embed media with the stored file's URL, as Discord does."""
        by_name = {a.filename: a for a in attachments}
        prefix = "attachment://"
        embeds = snapshot(embeds)
        for embed in embeds:
            for key in ("image", "thumbnail", "video"):
                media = embed.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith(prefix):
                    attachment = by_name.get(media["url"].removeprefix(prefix))
                    if attachment is not None:
                        media.update(url=attachment.url, proxy_url=attachment.proxy_url)
        return embeds
