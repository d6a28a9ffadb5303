"""The two bots as child processes, and what /proc says about them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from bot.sandbox.discord_double import DiscordDouble
from tests.e2e.harness import ROOT, START_TIMEOUT_S, BotProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class NaiveProcess(BotProcess):
    """``python -m bench.naive_bot``; everything but the command line is :class:`BotProcess`'s."""

    def __init__(self, config_path: Path, log_path: Path, adopt: Path | None = None) -> None:
        super().__init__(config_path, log_path)
        self.adopt = adopt

    async def start(self, dd: DiscordDouble) -> None:
        identified = dd.identify_count
        argv = [sys.executable, "-m", "bench.naive_bot", "--config", str(self.config_path)]
        if self.adopt is not None:
            argv += ["--adopt", str(self.adopt)]
        with self.log_path.open("ab") as log:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
            self.process = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=log, stderr=log, env=env)
        await dd.wait_for(
            lambda: self._exited() or (dd.identify_count > identified and dd.gateway.live_sessions),
            timeout=START_TIMEOUT_S,
            what="the naive bot to log in",
        )
        if self._exited():
            raise RuntimeError(f"the naive bot exited with {self.process.returncode}:\n{self.log_tail()}")


def pid_of(bot: BotProcess) -> int:
    assert bot.process is not None, "not started"
    return bot.process.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB: resident now, and the peak so far."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


async def stop_all(bots: list[BotProcess]) -> None:
    """Stop every bot started: SIGTERM and a wait, then SIGKILL if it is still there. Runs to the
    end even when cancelled (Ctrl-C), and re-raises the cancellation afterwards."""
    cancelled = None
    for bot in bots:
        process = bot.process
        if process is None or process.returncode is not None:
            continue
        try:
            await bot.stop(timeout=15.0)
        except asyncio.CancelledError as exc:
            cancelled = exc
        except Exception:  # noqa: BLE001 - it did not stop in time: killed below
            pass
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(process.wait(), 5.0)
    if cancelled is not None:
        raise cancelled
