"""The edge target's commands, registered through entry points (pyproject.toml): `kit serve edge`
(`kit.serve` group) and `kit deploy edge` (`kit.deploy` group). Each adds its own options to the
subcommand the CLI made for it (which already has NAME and --alias) and runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.errors import StepFailure


class Serve:
    help = "the Node edge server on the version's bundle (reload on SIGHUP)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reject-out-of-range", action="store_true",
                            help="answer 400 for inputs outside the manifest's ranges")
        parser.add_argument("--fallback-url", help="cloud endpoint the browser page falls back to")
        from kit.targets.follow import add_follow_argument  # asyncio: not at `kit` start-up

        add_follow_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from kit.project import find_root
        from kit.targets.edge.node import NodeError
        from kit.targets.edge.server import serve

        try:
            return serve(find_root(), args.name, args.alias, args.port, args.host, follow_interval=args.follow_interval,
                         follow_webhook=args.follow_webhook,
                         reject_out_of_range=args.reject_out_of_range, fallback_url=args.fallback_url)
        except NodeError as error:  # Node or the runtime is missing: the command cannot run
            raise StepFailure(str(error)) from None


class Deploy:
    help = "worker.js (request handler, TF.js and the bundle in one file) for Cloudflare Workers or Fastly"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="folder to write the deployable into")
        parser.add_argument("--reject-out-of-range", action="store_true",
                            help="answer 400 for inputs outside the manifest's ranges")
        parser.add_argument("--force", action="store_true",
                            help="write into a non-empty --out folder (replaces only the files deploy writes)")

    def run(self, args: argparse.Namespace) -> int:
        from kit.project import find_root
        from kit.targets.edge.deploy import deploy
        from kit.targets.edge.node import NodeError

        try:
            version, out = deploy(find_root(), args.name, args.alias, args.out,
                                  reject_out_of_range=args.reject_out_of_range, force=args.force)
        except NodeError as error:
            raise StepFailure(str(error)) from None
        print(f"{args.name} v{version} ({args.name}@{args.alias}): wrote {out}/worker.js, manifest.json, README.md")
        return 0
