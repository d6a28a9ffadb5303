"""What a job does: its action, and the buttons a server lists on a task (trueai, new-api), read
from their customIds."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Action(str, enum.Enum):
    IMAGINE = "IMAGINE"
    UPSCALE = "UPSCALE"
    VARIATION = "VARIATION"
    REROLL = "REROLL"
    DESCRIBE = "DESCRIBE"
    BLEND = "BLEND"
    ZOOM = "ZOOM"  # zoom out / custom zoom (trueai's Outpaint, CustomZoom)
    PAN = "PAN"
    VIDEO = "VIDEO"  # Animate, Extend, /animate: a batch of short videos
    SHORTEN = "SHORTEN"  # /shorten: shorter prompts to imagine
    ACTION = "ACTION"  # another of the server's buttons

    @property
    def makes_grid(self) -> bool:
        return self in (Action.IMAGINE, Action.VARIATION, Action.REROLL, Action.BLEND, Action.ZOOM, Action.PAN)


@dataclass(frozen=True)
class TaskButton:
    """One of the buttons a server lists on a task (trueai, new-api): pressed via /submit/action."""

    custom_id: str
    label: str = ""
    emoji: str = ""
    style: int = 2

    @property
    def needs_prompt(self) -> bool:
        """Custom Zoom asks for a new prompt before it runs (the server answers 21 / MODAL)."""
        return self.custom_id.startswith("MJ::CustomZoom::")

    @property
    def needs_mask(self) -> bool:
        """Vary (Region) needs a painted mask, which a Discord modal cannot collect."""
        return self.custom_id.startswith("MJ::Inpaint::")

    @property
    def _kind(self) -> str:
        """``upsample`` of ``MJ::JOB::upsample::2::…``, ``Outpaint`` of ``MJ::Outpaint::50::1::…``."""
        parts = self.custom_id.split("::")
        return parts[2] if len(parts) > 2 and parts[1] == "JOB" else parts[1] if len(parts) > 1 else ""

    @property
    def is_plain_change(self) -> bool:
        """U1-U4, V1-V4 or 🔄: the buttons the bot also draws itself. Upscale (Subtle) is not one:
        it shares UPSCALE 1 with U1 but is a button of its own."""
        return self._kind in ("upsample", "variation", "reroll")

    @property
    def makes_video(self) -> bool:
        """Animate, a video batch's U1-U4, Extend: the result is a video."""
        kind = self._kind.lower()
        return kind.startswith("animate") or kind.startswith("video") or "extend" in kind

    @property
    def animates(self) -> str | None:
        """Animate (High/Low motion) under an image: its motion, "high" or "low"; else None."""
        kind = self._kind
        return kind.removeprefix("animate_") if kind in ("animate_high", "animate_low") else None

    def change(self) -> tuple[Action, int | None]:
        """What pressing it does, as far as its customId tells (``MJ::JOB::upsample::2::…``)."""
        parts = self.custom_id.split("::")
        kind = self._kind
        index = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
        if kind == "upsample" or kind.startswith("upsample_"):
            return Action.UPSCALE, index
        if kind in ("variation", "high_variation", "low_variation"):
            return Action.VARIATION, index if kind == "variation" else None
        if kind == "reroll":
            return Action.REROLL, None
        if kind in ("Outpaint", "CustomZoom"):
            return Action.ZOOM, None
        if kind.startswith("pan_"):
            return Action.PAN, None
        if kind == "video_virtual_upscale":
            return Action.VIDEO, index  # one video of a batch (trueai's task says UPSCALE)
        if kind.startswith("animate"):
            return Action.VIDEO, None  # Animate (High/Low motion), Extend
        return Action.ACTION, None

    def to_json(self) -> dict[str, Any]:
        return {"customId": self.custom_id, "label": self.label, "emoji": self.emoji, "style": self.style}

    @classmethod
    def from_json(cls, data: Any) -> TaskButton | None:
        if not isinstance(data, dict) or not isinstance(data.get("customId"), str) or not data["customId"]:
            return None
        style = data.get("style")
        return cls(
            custom_id=data["customId"],
            label=str(data.get("label") or ""),
            emoji=str(data.get("emoji") or ""),
            style=style if isinstance(style, int) else 2,
        )
