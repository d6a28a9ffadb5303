"""``fit_image`` in worker processes: off the bot's event loop, each worker with a memory cap.

Each worker is a single-process pool of its own, so a job that hangs or kills its process takes no
other job down, and the one that failed is known. Workers start on first use, from a fork server
(a clean process started once: the bot's own process runs uvloop and threads, and must not be
forked) or by spawning where there is none.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import BaseContext

from PIL import Image

from bot.media.errors import MediaTimeout, MediaWorkerClosed, MediaWorkerCrashed, OutOfMemory
from bot.media.fit import DEFAULT_MAX_PIXELS, FittedImage, fit_image

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # a worker not up by then will not come up (MediaTimeout)


def start_context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Imported once in the server, inherited by every worker: Pillow, and the main module
        # (the default; each worker would import it again otherwise). Effective until it starts.
        context.set_forkserver_preload(["__main__", "bot.media.fit"])
        return context
    return multiprocessing.get_context("spawn")


def prepare_worker(memory_bytes: int) -> None:
    """Runs first in each worker: caps its address space, so a huge image raises MemoryError in
    the worker instead of swapping or OOM-killing the machine."""
    # Ctrl-C in a terminal reaches the whole process group; the bot closes the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Pillow registers its codecs on first use: done before the cap, or a MemoryError halfway
    # through would leave this worker without WebP for good (seen: KeyError 'WEBP').
    Image.init()
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, AttributeError, ValueError, OSError):
        pass  # no resource module (Windows), or RLIMIT_AS refused (macOS): uncapped there


def worker_pid() -> int:
    return os.getpid()


@dataclass
class WorkerSlot:
    """One worker process, or none yet."""

    executor: ProcessPoolExecutor | None = None
    pid: int | None = None


class MediaWorker:
    """Re-encodes images to fit an upload limit in ``processes`` worker processes, each capped at
    ``memory_mb`` MiB of address space (all of it: the interpreter and Pillow take about 60 MiB).
    At most ``processes`` re-encodes run at once; more calls wait their turn, and ``timeout_s``
    counts from when a call's turn comes."""

    def __init__(
        self,
        processes: int = 2,
        memory_mb: int = 1024,
        timeout_s: float = 60,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.max_pixels = max_pixels
        self._slots = [WorkerSlot() for _ in range(processes)]
        self._idle = list(self._slots)
        self._turns = asyncio.Semaphore(processes)
        self._closed = False

    async def fit(self, data: bytes, limit: int) -> FittedImage:
        """``fit_image(data, limit)`` in a worker. Raises what it raises (``NotAnImage``,
        ``ImageTooLarge``, ``OutOfMemory``, ``CannotFit``), and ``MediaTimeout``,
        ``MediaWorkerCrashed``, ``MediaWorkerClosed``. After ``OutOfMemory``, a timeout or a crash
        the next call gets a fresh worker."""
        if self._closed:
            raise MediaWorkerClosed("the media worker is closed")
        async with self._turns:
            if self._closed:  # closed while this call waited its turn
                raise MediaWorkerClosed("the media worker is closed")
            slot = self._idle.pop()
            try:
                return await self._run(slot, data, limit)
            finally:
                self._idle.append(slot)

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (for the tests and the benchmark, which measure or kill them)."""
        return [slot.pid for slot in self._slots if slot.executor is not None and slot.pid is not None]

    async def close(self) -> None:
        """Refuses new calls, lets the running ones finish (each within its timeout), then stops the
        workers."""
        self._closed = True
        for _ in range(self.processes):
            await self._turns.acquire()
        for slot in self._slots:
            if slot.executor is not None:
                executor, slot.executor, slot.pid = slot.executor, None, None
                await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        for _ in range(self.processes):
            self._turns.release()  # calls still waiting for a turn see that it is closed

    async def _run(self, slot: WorkerSlot, data: bytes, limit: int) -> FittedImage:
        job = functools.partial(fit_image, data, limit, max_pixels=self.max_pixels)
        try:
            if slot.executor is None:
                slot.executor = self._executor()
                # The first job starts the process (and, the first time, the fork server), which
                # blocks: a trivial one, in a thread. It also tells the worker's pid.
                first = slot.executor.submit
                slot.pid = await asyncio.to_thread(lambda: first(worker_pid).result(START_TIMEOUT_S))
                log.info("media worker %d started (memory cap %d MiB)", slot.pid, self.memory_mb)
            running = asyncio.get_running_loop().run_in_executor(slot.executor, job)
            return await asyncio.wait_for(running, self.timeout_s)
        except TimeoutError:
            self._discard(slot, kill=True)
            raise MediaTimeout(f"no result for {len(data)} bytes within {self.timeout_s:g} s: worker killed") from None
        except asyncio.CancelledError:
            self._discard(slot, kill=True)  # nobody wants the result: free the worker at once
            raise
        except BrokenProcessPool:
            self._discard(slot, kill=False)
            raise MediaWorkerCrashed(
                f"the media worker died with {len(data)} bytes (killed, a crash, or out of memory"
                f" receiving them): replaced"
            ) from None
        except (OutOfMemory, MemoryError) as exc:
            # A fresh worker for the next call: a codec that failed an allocation may not have
            # cleaned up after itself. (A bare MemoryError: sending the result back.)
            self._discard(slot, kill=False)
            if isinstance(exc, OutOfMemory):
                raise
            raise OutOfMemory(f"the media worker ran out of its {self.memory_mb} MiB sending a result") from None

    def _executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=start_context(),
            initializer=prepare_worker,
            initargs=(self.memory_mb * 2**20,),
        )

    def _discard(self, slot: WorkerSlot, *, kill: bool) -> None:
        """Forgets the slot's worker (the next call starts a new one), killing it if it may still be
        busy with a job nobody waits for."""
        executor, pid = slot.executor, slot.pid
        slot.executor, slot.pid = None, None
        if executor is None:
            return
        if kill:
            # Through its Process, which knows whether it has exited: never a reused pid.
            for process in multiprocessing.active_children():
                if process.pid == pid:
                    process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        log.warning("media worker %s discarded%s", pid, " (killed)" if kill else "")
