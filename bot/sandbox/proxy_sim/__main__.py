"""Standalone use: ``python -m bot.sandbox.proxy_sim --port 8080 --mode time --flavour trueai``."""

from __future__ import annotations

import argparse
import asyncio

from .server import ProxySim
from .timeline import FLAVOURS, MODES, UPSTREAMS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a simulated Midjourney Proxy until interrupted.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--flavour", choices=FLAVOURS, default="novicezk")
    parser.add_argument("--upstream", choices=UPSTREAMS, default=None, help="newapi: the server behind it")
    parser.add_argument("--secret", default=None, help="require this secret (in the flavour's auth header)")
    parser.add_argument("--long-custom-ids", action="store_true", help="trueai: customIds over 100 characters")
    parser.add_argument("--remix", action="store_true", help="trueai: actions wait for /submit/modal")
    parser.add_argument("--remix-auto-submit", action="store_true", help="trueai: with --remix, run them at once")
    parser.add_argument("--not-admin", action="store_true", help="trueai: the secret is no admin's (no cancel)")
    parser.add_argument(
        "--dead-link", action="append", default=[], help="trueai: a describe link Midjourney cannot read"
    )
    parser.add_argument("--no-video", action="store_true", help="trueai: video off (no Animate, no /submit/video)")
    parser.add_argument("--user-core-size", type=int, default=None, help="trueai: IN_PROGRESS tasks allowed")
    parser.add_argument("--user-queue-size", type=int, default=None, help="trueai: waiting tasks allowed")
    parser.add_argument("--denied-model", action="append", default=[], help="newapi: model the key may not use")
    parser.add_argument("--gateway-poll-s", type=float, default=1.0, help="newapi: seconds between its polls")
    parser.add_argument("--mode", choices=MODES, default="time")
    parser.add_argument("--step-s", type=float, default=1.0, help="seconds per step in time mode")
    parser.add_argument("--max-running", type=int, default=3)
    parser.add_argument("--max-queue", type=int, default=10)
    parser.add_argument("--banned-word", action="append", default=[], help="repeat for several words")
    parser.add_argument("--no-previews", action="store_true", help="no preview imageUrl while running")
    parser.add_argument("--final-image-size", type=int, default=None, help="pad final images to this many bytes")
    parser.add_argument(
        "--final-image-pixels", default=None, help="upscales as photo-like PNGs of WIDTHxHEIGHT pixels, e.g. 4096x2048"
    )
    parser.add_argument("--no-image-urls", action="store_true", help="trueai: no imageUrls on finished grids")
    parser.add_argument("--notify-hook", default=None, help="POST every task change here (global hook)")
    parser.add_argument("--jitter", type=float, default=0.0, help="time mode: vary each task's step by +-this fraction")
    parser.add_argument("--seed", type=int, default=None, help="seed for --jitter")
    args = parser.parse_args(argv)
    pixels = None
    if args.final_image_pixels:
        try:
            width, height = (int(part) for part in args.final_image_pixels.lower().split("x"))
        except ValueError:
            parser.error("--final-image-pixels is WIDTHxHEIGHT, e.g. 4096x2048")
        pixels = (width, height)

    async def serve() -> None:
        sim = ProxySim(
            args.secret,
            flavour=args.flavour,
            upstream=args.upstream,
            long_custom_ids=args.long_custom_ids,
            remix=args.remix,
            remix_auto_submit=args.remix_auto_submit,
            admin=not args.not_admin,
            dead_links=args.dead_link,
            video=not args.no_video,
            user_core_size=args.user_core_size,
            user_queue_size=args.user_queue_size,
            denied_models=args.denied_model,
            gateway_poll_s=args.gateway_poll_s,
            host=args.host,
            port=args.port,
            mode=args.mode,
            step_s=args.step_s,
            max_running=args.max_running,
            max_queue=args.max_queue,
            banned_words=args.banned_word,
            previews=not args.no_previews,
            final_image_size=args.final_image_size,
            final_image_pixels=pixels,
            image_urls=not args.no_image_urls,
            notify_hook=args.notify_hook,
            jitter=args.jitter,
            seed=args.seed,
        )
        async with sim:
            flavour = sim.flavour + (f" over {sim.upstream}" if sim.upstream else "")
            print(f"Midjourney Proxy simulator ({flavour}, {sim.mode} mode) at {sim.base_url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
