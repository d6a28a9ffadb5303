"""Timelines and constants: task statuses, action sets, flavours, modes, and ``Step``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

API_PREFIX = "/mj"
DISCORD_INSTANCE_ID = "1"

NOT_START = "NOT_START"
SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
MODAL = "MODAL"  # trueai: waiting for /submit/modal (not running, not finished)
CANCEL = "CANCEL"  # trueai: cancelled (terminal)
TERMINAL_STATUSES = frozenset({SUCCESS, FAILURE, CANCEL})
RUNNING_STATUSES = frozenset({SUBMITTED, IN_PROGRESS})

CHANGE_ACTIONS = frozenset({"UPSCALE", "VARIATION", "REROLL"})
# novicezk only lets these be the parent of a change (no upscale of an upscale).
CHANGEABLE_PARENT_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
# trueai: the tasks whose result is a grid of four (U1-U4, reroll, V1-V4 buttons).
GRID_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND", "ZOOM", "PAN"})
DESCRIBE_MARKS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
# What /describe answers: four prompts in Midjourney's style.
DESCRIBED = (
    "a red fox sitting in fresh snow, soft morning light, wildlife photography --ar 1:1",
    "watercolor painting of a fox in a winter forest, muted palette --ar 1:1",
    "a curious fox looks at the camera, shallow depth of field, 85mm --ar 1:1",
    "minimalist illustration of an orange fox on white background --ar 1:1",
)

FLAVOURS = ("novicezk", "trueai", "newapi")
UPSTREAMS = ("novicezk", "trueai")  # what new-api can relay to
# trueai serves every route under these prefixes too; the task records the speed.
SPEED_PREFIXES = {"/mj-fast/mj": "FAST", "/mj-relax/mj": "RELAX", "/mj-turbo/mj": "TURBO"}
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")

MODES = ("manual", "poll", "time")

# Side of every generated image, in pixels. Small on purpose: tests compare bytes.
IMAGE_SIDE = 64


# --------------------------------------------------------------------------
# Timelines


@dataclass(frozen=True)
class Step:
    """One state a task passes through.

    ``image`` is ``"preview"`` (a new preview URL, if the sim has previews on),
    ``"final"`` (the final image URL) or None (leave ``imageUrl`` unchanged).
    """

    status: str
    progress: str | None
    image: str | None = None
    fail_reason: str | None = None


DEFAULT_TIMELINE: tuple[Step, ...] = (
    Step(SUBMITTED, "0%"),
    Step(IN_PROGRESS, "10%", "preview"),
    Step(IN_PROGRESS, "40%", "preview"),
    Step(IN_PROGRESS, "80%", "preview"),
    Step(SUCCESS, "100%", "final"),
)


def _as_timeline(steps: Iterable[Step | tuple]) -> tuple[Step, ...]:
    """Accept Step objects or plain tuples such as ``("FAILURE", "", None, "任务超时")``."""
    timeline = tuple(s if isinstance(s, Step) else Step(*s) for s in steps)
    if not timeline:
        raise ValueError("a timeline needs at least one step")
    for step in timeline:
        if step.image not in (None, "preview", "final"):
            raise ValueError(f"unknown step image {step.image!r}")
    return timeline
