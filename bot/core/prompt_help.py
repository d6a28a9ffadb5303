"""What the prompt box suggests as a member types: their recent prompts, and after ``--`` the
parameters with their usual values and the member's own options. Pure and quick: Discord waits 3 s
for an autocomplete answer, and it must not ask the proxy anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Discord: at most 25 choices; a choice's name and value at most 100 characters each.
MAX_CHOICES = 25
MAX_CHOICE = 100

# (parameter, what it is, its usual values): Midjourney's documented ranges.
PARAMETER_HINTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ar", "aspect ratio", ("16:9", "9:16", "1:1", "3:2", "2:3", "4:5", "21:9")),
    ("v", "version", ()),  # the server's versions, given by the caller
    ("s", "stylize 0-1000", ("50", "100", "250", "750")),
    ("c", "chaos 0-100", ("10", "25", "50")),
    ("w", "weird 0-3000", ("250", "500", "1000")),
    ("q", "quality", (".5", "1", "2")),
    ("sref", "style reference", ("random",)),
    ("no", "leave out", ("text",)),
    ("seed", "seed 0-4294967295", ()),
    ("tile", "repeating pattern", ("",)),
    ("raw", "style raw", ()),
)


@dataclass(frozen=True)
class Suggestion:
    name: str  # what the member reads in the list
    value: str  # what goes into the prompt box


def suggestions(
    typed: str,
    *,
    recent: Sequence[str] = (),
    options: dict[str, str] | None = None,
    versions: Sequence[str] = (),
) -> list[Suggestion]:
    """Choices for what the member has ``typed`` so far (at most 25, each within 100 characters)."""
    text = " ".join(typed.split())
    head, _, last = text.rpartition(" ")
    found: list[Suggestion] = []
    if last.startswith("--"):
        found += _parameters(head, last[2:].lower(), options or {}, versions)
    else:
        needle = text.casefold()
        found += [Suggestion(p, p) for p in recent if needle in p.casefold() and p != text]
    if text and all(s.value != text for s in found):
        found.insert(0, Suggestion(text, text))  # what was typed stays choosable, first
    unique: dict[str, Suggestion] = {}
    for suggestion in found:
        if len(suggestion.value) <= MAX_CHOICE and suggestion.value.strip():
            unique.setdefault(suggestion.value, Suggestion(_clip(suggestion.name), suggestion.value))
    return list(unique.values())[:MAX_CHOICES]


def _parameters(head: str, started: str, options: dict[str, str], versions: Sequence[str]) -> list[Suggestion]:
    before = f"{head} " if head else ""
    found = []
    for name, value in sorted(options.items()):
        if name.startswith(started):
            found.append(Suggestion(f"--{name} → {value} (yours)", f"{before}--{name}"))
    for name, what, values in PARAMETER_HINTS:
        if not name.startswith(started):
            continue
        choices = tuple(v for v in versions if not v.startswith("niji")) if name == "v" else values
        for value in choices or ("",):
            shown = f"--{name} {value}".rstrip()
            found.append(Suggestion(f"{shown} ({what})", f"{before}{shown}"))
    if "niji".startswith(started) and started:
        found += [Suggestion(f"--{v} (niji)", f"{before}--{v}") for v in versions if v.startswith("niji")]
    return found


def _clip(name: str) -> str:
    return name if len(name) <= MAX_CHOICE else name[: MAX_CHOICE - 1] + "…"
