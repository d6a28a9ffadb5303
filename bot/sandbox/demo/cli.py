"""``mjbot demo``'s command line. Imports nothing heavy: the simulator and the double load only when
the demo runs."""

from __future__ import annotations

import argparse
import asyncio
import logging

FLAVOURS = ("trueai", "novicezk", "newapi")  # as stage.FLAVOURS, without importing it here


def add_command(commands: argparse._SubParsersAction) -> None:
    help = "try the bot in a browser: a simulated proxy and Discord, no account or token needed"
    demo = commands.add_parser("demo", help=help, description=help)
    demo.add_argument("--flavour", choices=FLAVOURS, default="trueai", help="which proxy to simulate (default trueai)")
    demo.add_argument("--port", type=int, default=8090, help="the page's port on 127.0.0.1 (default 8090)")
    demo.add_argument("--step-s", type=float, default=2.0, help="seconds per step of a simulated task (default 2)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.step_s <= 0 or not 0 <= args.port <= 65535:
        print("mjbot demo: --step-s must be above 0 and --port between 0 and 65535")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from bot.sandbox.demo.run import DemoFailed, run_demo

        asyncio.run(run_demo(flavour=args.flavour, port=args.port, step_s=args.step_s, ready=_ready))
    except KeyboardInterrupt:  # Ctrl-C before the demo's own handler is in place
        return 130
    except DemoFailed as exc:
        print(f"mjbot demo: {exc}")
        return 1
    except OSError as exc:
        print(f"mjbot demo: cannot open the page on port {args.port}: {exc.strerror or exc} (try --port 0)")
        return 1
    return 0


def _ready(line: str) -> None:
    print(line, flush=True)
