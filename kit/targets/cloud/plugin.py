"""The cloud target's command, registered through the `kit.serve` entry point group
(pyproject.toml): `kit serve cloud` adds its own options and runs the front server."""

from __future__ import annotations

import argparse
from pathlib import Path


class Serve:
    help = ("MLflow's scoring server behind the kit's front (version headers, prediction log, "
            "reload on SIGHUP)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--log-dir", type=Path,
                            help="prediction log folder (default: mlruns/predictions/NAME-ALIAS/)")
        parser.add_argument("--log-inputs", choices=["full", "hash"], default="full",
                            help="log each row's inputs in full (default) or only their sha256")

    def run(self, args: argparse.Namespace) -> int:
        from kit.project import find_root
        from kit.targets.cloud.front import serve

        return serve(find_root(), args.name, args.alias, args.port, args.host,
                     log_dir=args.log_dir, log_inputs=args.log_inputs)
