"""The naive way for ``bench.media_acks``: the real bot, but re-encoding with Pillow on its event
loop instead of in worker processes. For the benchmark only."""

from __future__ import annotations

from bot.__main__ import main
from bot.media import fit_image
from bot.media.worker import MediaWorker


async def fit_on_the_loop(self: MediaWorker, data: bytes, limit: int):
    return fit_image(data, limit, max_pixels=self.max_pixels)


MediaWorker.fit = fit_on_the_loop  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main())
