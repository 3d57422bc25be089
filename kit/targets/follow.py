"""Following an alias by polling the registry: what `kit serve cloud|edge --follow-interval` share.

A server that follows its alias looks at the holder every INTERVAL seconds and, when it is not the
version being served, calls the server's own reload: the same zero-drop switch SIGHUP makes.
Polling works wherever the registry is reachable from the server (a CI job that promotes on a team
server reaches every follower within one interval). MLflow's registry webhooks are not used: see
README "For teams" for why.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable


async def follow(resolve: Callable[[], str], serving: Callable[[], str], reload: Callable[[], Awaitable],
                 interval: float, closing: Callable[[], bool], what: str) -> None:
    """Until `closing()`: every `interval` seconds, `resolve()` (blocking, run in a thread) the holder
    of `what` (NAME@ALIAS) and `await reload()` when it differs from `serving()`. A registry that is
    down or an alias that is gone leaves the server serving what it serves, and is tried again."""
    while not closing():
        await asyncio.sleep(interval)
        try:
            version = await asyncio.to_thread(resolve)
        except Exception as error:  # keep serving; look again next interval
            print(f"follow: cannot resolve {what}, still serving v{serving()}: {error}", file=sys.stderr, flush=True)
            continue
        if not closing() and version != serving():
            await reload()


def add_follow_argument(parser) -> None:
    """`--follow-interval SECONDS`, the same for every target's `kit serve`."""
    parser.add_argument("--follow-interval", type=_seconds, metavar="SECONDS",
                        help="look at the alias every SECONDS and switch (as SIGHUP does) when it moved, "
                             "e.g. when a CI job promotes on a team server (default: only on SIGHUP)")


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds > 0")
    return value
