"""The cloud target's command, registered through the `kit.serve` entry point group
(pyproject.toml): `kit serve cloud` adds its own options and runs the front server."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


class Serve:
    help = ("the registered MLflow model in worker processes behind the kit's front (micro-batching, "
            "version headers, prediction log, /metrics, reload on SIGHUP)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--log-dir", type=Path,
                            help="prediction log folder (default: mlruns/predictions/NAME-ALIAS/)")
        parser.add_argument("--log-inputs", choices=["full", "hash"], default="full",
                            help="log each row's inputs in full (default) or only their sha256")
        parser.add_argument("--workers", type=_positive_int,
                            help="worker processes holding the model (default: one per core, at most 4)")
        parser.add_argument("--max-batch", type=_positive_int,
                            help="most requests scored together in one call of the model (default 32)")
        parser.add_argument("--max-wait-ms", type=_non_negative_float,
                            help="longest a request waits for batch-mates while other batches are being scored "
                                 "(default 0: a free worker takes what is queued; a lone request never waits)")
        from kit.targets.follow import add_follow_argument  # asyncio: not at `kit` start-up

        add_follow_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from kit.project import find_root
        from kit.targets.cloud.front import serve

        batching = {"workers": args.workers, "max_batch": args.max_batch,
                    "max_wait": None if args.max_wait_ms is None else args.max_wait_ms / 1000}
        return serve(find_root(), args.name, args.alias, args.port, args.host, log_dir=args.log_dir,
                     log_inputs=args.log_inputs, follow_interval=args.follow_interval,
                     follow_webhook=args.follow_webhook, **{key: value for key, value in batching.items() if value is not None})


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number >= 1")
    return int(text)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number >= 0")
    return value
