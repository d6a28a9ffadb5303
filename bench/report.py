"""The table: rows are metrics, columns this bot / naive / goal / met?; as text and as Markdown."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HEADER = ("metric", "this bot", "naive", "goal", "met?")


@dataclass
class Row:
    metric: str
    this_bot: str
    naive: str
    goal: str = "—"
    met: str = "—"


@dataclass
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: list[str] = field(default_factory=list)

    def text(self) -> str:
        cells = [HEADER] + [(r.metric, r.this_bot, r.naive, r.goal, r.met) for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
        line = "+-" + "-+-".join("-" * w for w in widths) + "-+"

        def render(row: Sequence[str]) -> str:
            return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

        out = [self.title, *self.machine, "", line, render(HEADER), line.replace("-", "=")]
        out += [render(row) for row in cells[1:]]
        out.append(line)
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        def escape(cell: str) -> str:
            return cell.replace("|", "\\|")

        out = [f"### {self.title}", "", *[f"{m}  " for m in self.machine], ""]
        out.append("| " + " | ".join(HEADER) + " |")
        out.append("|" + "|".join(["---"] * len(HEADER)) + "|")
        out += [
            "| " + " | ".join(escape(c) for c in (r.metric, r.this_bot, r.naive, r.goal, r.met)) + " |"
            for r in self.rows
        ]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out) + "\n"


def machine_lines(total_s: float, command: str, commit_at_start: str = "") -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    import discord

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = commit_at_start or current_commit()
    code = f", code at commit {commit}" if commit else ""
    if commit and current_commit() not in ("", commit):
        code += f" (HEAD was {current_commit()} by the end of the run)"
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
        load = f" Load average (1 / 5 / 15 min) at the end: {load} (anything else running shares the cores)."
    except OSError:
        load = ""
    return [
        f"Date: {date}{code}. Machine: {cores} cores (nproc), {model}, Python {platform.python_version()}, "
        f"discord.py {discord.__version__}.",
        f"Command: `{command}`. Total run time: {total_s:.0f} s.{load}",
    ]


def current_commit() -> str:
    """The checkout's HEAD (short), or "" outside git (read-only: ``git rev-parse``)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --- number formatting --------------------------------------------------------------------------


def count(value: float) -> str:
    """1, 10, 1,000; 1.5 when not whole."""
    if math.isnan(value):
        return "?"
    if abs(value - round(value)) < 0.005:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Sequence[float], *, censored: Sequence[float] = ()) -> str:
    """p50 / p95 / max (nearest rank), in ms or s. ``censored`` are lower bounds (jobs not done when
    the wait ended): with any, every figure is a lower bound and is shown with "≥"."""
    everything = list(values) + list(censored)
    if not everything:
        return "—"
    figures = [nearest_rank(everything, 0.5), nearest_rank(everything, 0.95), max(everything)]
    prefix = "≥ " if censored else ""
    if figures[-1] < 1.0:
        return prefix + " / ".join(f"{v * 1000:.0f}" for v in figures) + " ms"
    digits = 2 if figures[-1] < 10 else 1
    return prefix + " / ".join(f"{v:.{digits}f}" for v in figures) + " s"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")
