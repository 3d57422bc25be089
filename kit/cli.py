"""The `kit` command: parse arguments, call one function, map the error family to exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Run parameterized notebooks as a tracked pipeline.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def pipeline_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("pipeline", type=Path, help="pipeline file, e.g. pipelines/iris.yaml")
        sub.add_argument("-p", "--param", action="append", default=[], metavar="STEP.PARAM=VALUE",
                         help="override a notebook parameter (repeatable); VALUE is read as YAML: 5, 0.1, true, text")
        sub.add_argument("--params", type=Path, metavar="FILE.yaml",
                         help="overrides from a file: {step: {param: value}}; -p wins over it")

    run = commands.add_parser("run", help="validate, then run every step and track it in MLflow")
    pipeline_args(run)
    run.add_argument("-j", "--jobs", type=int, default=2, help="steps run at the same time when independent (default 2)")

    validate = commands.add_parser("validate", help="check the pipeline file and parameters without running anything")
    pipeline_args(validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from kit.errors import KitError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KitError as error:
        print(f"kit {args.command}: {error}", file=sys.stderr)
        return error.exit_code


def _load(args):
    from kit import pipeline

    layers = []
    if args.params:
        layers.append(pipeline.load_params_file(args.params))
    if args.param:
        layers.append(pipeline.parse_overrides(args.param))
    return pipeline.load(args.pipeline, overrides=layers), layers


def cmd_validate(args) -> int:
    plan, _ = _load(args)
    print(f"{plan.path.name}: OK, {len(plan.steps)} steps in order: {' -> '.join(plan.steps)}")
    for step in plan.steps.values():
        shown = ", ".join(f"{k}={v!r}" for k, v in step.parameters.items()) or "defaults"
        print(f"  {step.name}: {step.spec.notebook} ({shown})")
    return 0


def cmd_run(args) -> int:
    from kit.run import run

    plan, layers = _load(args)
    merged: dict = {}
    for layer in layers:
        for step, values in layer.items():
            merged.setdefault(step, {}).update(values)
    result = run(plan, jobs=args.jobs, overrides=merged)
    print(f"pipeline {plan.name}: all {len(result.steps)} steps done")
    print(f"  MLflow run {result.run_id} (experiment {plan.name}) in {result.tracking_uri}")
    print(f"  workspace  {result.workspace}")
    return 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate}

if __name__ == "__main__":
    sys.exit(main())
