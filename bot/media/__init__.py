"""Images: re-encoding a result to fit Discord's upload limit (in worker processes, off the event
loop, with a memory cap) and reading an upload's header. Below the jobs layer: imports only the
standard library, Pillow and ``bot.core``."""

from bot.media.errors import (
    CannotFit,
    ImageTooLarge,
    MediaError,
    MediaTimeout,
    MediaWorkerClosed,
    MediaWorkerCrashed,
    NotAnImage,
    OutOfMemory,
)
from bot.media.fit import DEFAULT_MAX_PIXELS, QUALITY_FLOOR, FittedImage, ImageInfo, fit_image, probe_image
from bot.media.worker import MediaWorker

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "QUALITY_FLOOR",
    "CannotFit",
    "FittedImage",
    "ImageInfo",
    "ImageTooLarge",
    "MediaError",
    "MediaTimeout",
    "MediaWorker",
    "MediaWorkerClosed",
    "MediaWorkerCrashed",
    "NotAnImage",
    "OutOfMemory",
    "fit_image",
    "probe_image",
]
