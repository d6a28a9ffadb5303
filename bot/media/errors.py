"""What can go wrong re-encoding or reading an image. ``str(error)`` is a short log line.

They cross a process boundary (the media worker), so each keeps ``MjBotError``'s constructor:
pickling rebuilds an exception from its message and restores ``params`` and ``detail`` after.
"""

from __future__ import annotations

from bot.core import errors


class MediaError(errors.MjBotError):
    """Anything that went wrong re-encoding or reading an image."""

    key = "error.internal"


class NotAnImage(errors.NotAnImage, MediaError):
    """Not a PNG, JPEG, WebP or GIF Pillow can read: garbage, another format, a truncated or corrupt
    file. A subclass of the core ``NotAnImage`` so the member sees the same message for an upload."""

    key = errors.NotAnImage.key


class ImageTooLarge(MediaError):
    """Too many pixels (over ``max_pixels``, or over Pillow's own decompression-bomb limit), or the
    worker ran out of its memory cap decoding or encoding it. About pixels and memory, not bytes:
    the core ``ImageTooLarge`` is the byte cap of uploads and downloads."""


class OutOfMemory(ImageTooLarge):
    """Decoding or encoding needed more memory than the worker's cap (or than there was)."""


class CannotFit(MediaError):
    """No encoding down to the quality floor fits the limit, or the image is animated (re-encoding
    would keep one frame). ``params``: limit, smallest (bytes of the smallest encoding tried, or 0)."""


class MediaWorkerCrashed(MediaError):
    """The worker process died during the call (killed, out of memory outside Python, a crash in a
    codec). It has been replaced; the next call starts a fresh one."""


class MediaTimeout(MediaError):
    """The re-encode took longer than the worker's ``timeout_s``; its process was killed."""


class MediaWorkerClosed(MediaError):
    """``fit`` after ``close()``."""
