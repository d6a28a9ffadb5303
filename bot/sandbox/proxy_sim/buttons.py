"""trueai's buttons: the sets put under grids, upscales and videos (by model version), and
reading a pressed button's customId back into a task action."""

from __future__ import annotations

import re
from typing import Any

_WINDOW_WAIT = "Waiting for window confirm"  # trueai's code 21 text (Services/TaskService.cs SubmitAction)
_BATCH_SIZE = re.compile(r"--bs\s+(\d+)", re.IGNORECASE)


def _video_batch_size(prompt: str | None) -> int:
    """TaskInfo.GetVideoBatchSize (Models/TaskInfo.cs): ``--bs N`` (1-4) in the prompt, else 4."""
    match = _BATCH_SIZE.search(prompt or "")
    if match and 1 <= int(match.group(1)) <= 4:
        return int(match.group(1))
    return 4


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "style": 2, "type": 2}


def _grid_buttons(job_hash: str) -> list[dict[str, Any]]:
    """U1-U4, reroll, V1-V4: what Midjourney puts under a grid."""
    return (
        [_button(f"MJ::JOB::upsample::{n}::{job_hash}", f"U{n}") for n in range(1, 5)]
        + [_button(f"MJ::JOB::reroll::0::{job_hash}::SOLO", emoji="🔄")]
        + [_button(f"MJ::JOB::variation::{n}::{job_hash}", f"V{n}") for n in range(1, 5)]
    )


_PANS = (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️"))
_VARY_EMOJI = "\U0001fa84"  # 🪄, CustomComponentModel.GetEmojiFromCodePoint(0x1FA84)
_FILM_EMOJI = "🎞️"  # Animate / Extend buttons
_REROLL_EMOJI = "🔄"
# trueai's upscale buttons carry the *name* of Midjourney's custom Discord emoji, not a
# Unicode emoji (Models/CustomComponentModel.cs CreateUpscaleButtons; Discord accounts keep
# btn.Emoji.Name, Services/DiscordWebSocketService.cs).
UPSCALE_EMOJI = "upscale_1"
DEFAULT_VERSION = "v 7"  # the sim's default model version when a prompt names none (see _version)
_VERSION_FLAG = re.compile(r"--(v|version|niji)\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


def _version(prompt: str | None, bot_type: str = "MID_JOURNEY") -> str:
    """``"v 7"``, ``"v 6.1"``, ``"niji 6"``: the model version a prompt asks for, in the form
    trueai's TaskInfo.GetVersion returns (Models/TaskInfo.cs). trueai's own default is v 8.1,
    whose upscales have no upscale/zoom/pan buttons; the sim assumes v 7 so a plain prompt
    gets the full set (write ``--v 8`` in the prompt for the v8 set)."""
    flags = list(_VERSION_FLAG.finditer(prompt or ""))
    match = flags[-1] if flags else None  # the last flag wins, as in Midjourney
    niji = bot_type == "NIJI_JOURNEY"
    if match is None:
        return "niji 7" if niji else DEFAULT_VERSION
    flag, number = match.group(1).lower(), match.group(2)
    return f"{'niji' if niji or flag == 'niji' else 'v'} {number}"


def _version_number(version: str) -> float:
    try:
        return float(version.split(" ")[-1])
    except ValueError:
        return 0.0


def _hd_upscale_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Upscale (Subtle) / (Creative), as CustomComponentModel.CreateUpscaleButtons makes them
    (Models/CustomComponentModel.cs): the customId names the model version."""
    if version.startswith("v 8"):
        return []  # v8 dropped the upscale buttons
    if version.startswith(("v 7", "niji 7")):
        kinds, labels = ("v7_2x_subtle", "v7_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith("v 6.1"):
        kinds, labels = ("v6r1_2x_subtle", "v6r1_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith(("v 6", "niji 6")):
        kinds, labels = ("v6_2x_subtle", "v6_2x_creative"), ("Upscale (Subtle)", "Upscale (Creative)")
    elif version.startswith(("v 5", "niji 5")):
        kinds, labels = ("v5_2x", "v5_4x"), ("Upscale (2x)", "Upscale (4x)")
    elif _version_number(version) < 5:
        return []
    else:
        number = version.split(" ")[-1]
        kinds = (f"v{number}_2x_subtle", f"v{number}_2x_creative")
        labels = ("Upscale (Subtle)", "Upscale (Creative)")
    return [
        _button(f"MJ::JOB::upsample_{kind}::1::{job_hash}::SOLO", label, UPSCALE_EMOJI)
        for kind, label in zip(kinds, labels, strict=True)
    ]


def _vary_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Vary (Subtle), Vary (Strong), and Vary (Region) from v5 on (CreateVaryButtons)."""
    buttons = [
        _button(f"MJ::JOB::low_variation::1::{job_hash}::SOLO", "Vary (Subtle)", _VARY_EMOJI),
        _button(f"MJ::JOB::high_variation::1::{job_hash}::SOLO", "Vary (Strong)", _VARY_EMOJI),
    ]
    if _version_number(version) >= 5:
        buttons.append(_button(f"MJ::Inpaint::1::{job_hash}::SOLO", "Vary (Region)", "🖌️"))
    return buttons


def _zoom_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    """Zoom Out 2x / 1.5x and Custom Zoom, for 5 <= version < 8 (CreateZoomButtons)."""
    if not 5 <= _version_number(version) < 8:
        return []
    return [
        _button(f"MJ::Outpaint::50::1::{job_hash}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{job_hash}::SOLO", "Zoom Out 1.5x", "🔍"),
        # CreateZoomButtons writes "MJ::CustomZoom::1::<hash>"; Discord's own button (and
        # Resources/ApiParams/upscale_buttons.json) is "MJ::CustomZoom::<hash>": both are accepted.
        _button(f"MJ::CustomZoom::1::{job_hash}", "Custom Zoom", "🔍"),
    ]


def _pan_buttons(job_hash: str, version: str) -> list[dict[str, Any]]:
    if not 5 <= _version_number(version) < 8:
        return []
    return [_button(f"MJ::JOB::pan_{side}::1::{job_hash}::SOLO", emoji=emoji) for side, emoji in _PANS]


def _animate_buttons(job_hash: str) -> list[dict[str, Any]]:
    """CustomComponentModel.CreateAnimateButtons: make a video of this image."""
    return [
        _button(f"MJ::JOB::animate_high::1::{job_hash}::SOLO", "Animate (High motion)", _FILM_EMOJI),
        _button(f"MJ::JOB::animate_low::1::{job_hash}::SOLO", "Animate (Low motion)", _FILM_EMOJI),
    ]


def _reroll_button(job_hash: str) -> dict[str, Any]:
    return _button(f"MJ::JOB::reroll::0::{job_hash}::SOLO", emoji=_REROLL_EMOJI)


def _upscale_buttons(job_hash: str, version: str = DEFAULT_VERSION, video: bool = True) -> list[dict[str, Any]]:
    """What trueai puts under an upscale (U1-U4), in TaskInfo.OnUpscaleButtons' order
    (Models/TaskInfo.cs): Upscale (Subtle/Creative), Vary (Subtle/Strong/Region), Zoom Out
    2x/1.5x, Custom Zoom, the four pans, Animate (High/Low motion) when video is enabled
    (Setting.EnableVideo), and reroll."""
    return [
        *_hd_upscale_buttons(job_hash, version),
        *_vary_buttons(job_hash, version),
        *_zoom_buttons(job_hash, version),
        *_pan_buttons(job_hash, version),
        *(_animate_buttons(job_hash) if video else []),
        _reroll_button(job_hash),
    ]


def _upscale_hd_buttons(job_hash: str, version: str = DEFAULT_VERSION) -> list[dict[str, Any]]:
    """Under an Upscale (Subtle/Creative) result, action UPSCALE_HD: TaskInfo.OnUpscale2xButtons
    (Models/TaskInfo.cs): vary, zoom, animate (always) and reroll; no upscale, no pan."""
    return [
        *_vary_buttons(job_hash, version),
        *_zoom_buttons(job_hash, version),
        *_animate_buttons(job_hash),
        _reroll_button(job_hash),
    ]


def _video_buttons(job_hash: str, count: int = 4) -> list[dict[str, Any]]:
    """Under a VIDEO batch: U1-U<count> (video_virtual_upscale, emoji "") and reroll
    (TaskInfo.SetVideoUpscaleButtons, Models/TaskInfo.cs)."""
    return [
        *(_button(f"MJ::JOB::video_virtual_upscale::{n}::{job_hash}", f"U{n}", "") for n in range(1, count + 1)),
        _reroll_button(job_hash),
    ]


def _video_extend_buttons(job_hash: str) -> list[dict[str, Any]]:
    """Under one upscaled video: Extend (High/Low motion) (TaskInfo.SetVideoExtendButtons)."""
    return [
        _button(f"MJ::JOB::animate_high_extend::1::{job_hash}", "Extend (High motion)", _FILM_EMOJI),
        _button(f"MJ::JOB::animate_low_extend::1::{job_hash}", "Extend (Low motion)", _FILM_EMOJI),
    ]


# customId -> task action, as trueai's SubmitController.Action reads them (Controllers/SubmitController.cs).
_CUSTOM_ID_ACTIONS = (
    (re.compile(r"MJ::JOB::upsample::([1-4])::.+"), "UPSCALE"),
    (re.compile(r"MJ::JOB::video_virtual_upscale::([1-4])::.+"), "UPSCALE"),  # one video of a batch
    (re.compile(r"MJ::JOB::upsample_[0-9a-z_]+::1::.+"), "UPSCALE_HD"),  # Upscale (Subtle/Creative/2x/4x)
    (re.compile(r"MJ::JOB::variation::([1-4])::.+"), "VARIATION"),
    (re.compile(r"MJ::JOB::(?:high|low)_variation::1::.+"), "VARIATION"),
    (re.compile(r"MJ::JOB::reroll::0::.+"), "REROLL"),
    (re.compile(r"MJ::Outpaint::\d+::1::.+"), "ZOOM"),
    (re.compile(r"MJ::CustomZoom::.+"), "ZOOM"),
    (re.compile(r"MJ::Inpaint::1::.+"), "VARIATION"),  # Vary (Region): waits for a mask
    (re.compile(r"MJ::JOB::pan_(?:left|right|up|down)::1::.+"), "PAN"),
    (re.compile(r"MJ::JOB::animate_(?:high|low)(?:_extend)?::1::.+"), "VIDEO"),
)


def _action_of(custom_id: str) -> tuple[str, int | None] | None:
    """The task action a button's customId makes, and the image index (U/V buttons only)."""
    for pattern, action in _CUSTOM_ID_ACTIONS:
        match = pattern.fullmatch(custom_id)
        if match:
            return action, int(match.group(1)) if match.groups() else None
    return None
