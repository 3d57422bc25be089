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

    contract = commands.add_parser("contract", help="data contracts: draft one from a sample, or check data against one")
    contract_commands = contract.add_subparsers(dest="contract_command", required=True, metavar="ACTION")
    draft = contract_commands.add_parser("draft", help="write a starting contract from a CSV or Parquet sample")
    draft.add_argument("data", type=Path)
    draft.add_argument("--out", type=Path, required=True, help="e.g. data_contracts/NAME.json")
    draft.add_argument("--force", action="store_true", help="overwrite an existing contract file")
    check = contract_commands.add_parser("check", help="validate a CSV or Parquet file against a contract")
    check.add_argument("contract", type=Path)
    check.add_argument("data", type=Path)
    check.add_argument("--html", type=Path, help="also write the HTML report here")

    models = commands.add_parser("models", help="registered models: versions, aliases, gate status, history")
    models.add_argument("name", nargs="?", help="one model in detail")
    models.add_argument("--version", metavar="V", help="with NAME: the evidence of one version (gates, contracts, "
                                                       "data hashes, commit, dirty flag, snapshot)")

    promote = commands.add_parser("promote", help="point an alias at a version whose gates passed")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--alias", required=True)
    promote.add_argument("--force", action="store_true", help="promote even if gates failed (recorded as forced)")
    promote.add_argument("--reason", default="", help="why; required with --force")

    rollback = commands.add_parser("rollback", help="move an alias back to its previous holder (from the audit log)")
    rollback.add_argument("name")
    rollback.add_argument("--alias", required=True)
    rollback.add_argument("--reason", default="", help="why (recorded in the audit log)")

    serve = commands.add_parser("serve", help="serve the version that holds an alias")
    serve.add_argument("target", choices=["edge", "cloud"],
                       help="edge: the Node edge server on the bundle; cloud: MLflow's scoring server behind the "
                            "kit's front (version headers, prediction log, reload on SIGHUP)")
    serve.add_argument("name")
    serve.add_argument("--alias", required=True)
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--reject-out-of-range", action="store_true", help="edge: answer 400 for inputs outside the manifest's ranges")
    serve.add_argument("--fallback-url", help="edge: cloud endpoint the browser page falls back to")
    serve.add_argument("--log-dir", type=Path,
                       help="cloud: prediction log folder (default: mlruns/predictions/NAME-ALIAS/)")
    serve.add_argument("--log-inputs", choices=["full", "hash"],
                       help="cloud: log each row's inputs in full (default) or only their sha256")

    deploy = commands.add_parser("deploy", help="write a self-contained deployable of the version that holds an alias")
    deploy.add_argument("target", choices=["edge"])
    deploy.add_argument("name")
    deploy.add_argument("--alias", required=True)
    deploy.add_argument("--out", type=Path, required=True)
    deploy.add_argument("--reject-out-of-range", action="store_true")
    deploy.add_argument("--force", action="store_true",
                        help="write into a non-empty --out folder (replaces only the files deploy writes)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from kit.errors import KitError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KitError as error:
        print(f"kit {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # outside a pipeline run (which reports its own): one line, no traceback
        from kit.checkpoint import where

        print(f"kit {args.command}: interrupted by SIGINT {where()}".rstrip(), file=sys.stderr)
        return 130


def _load(args):
    from kit import pipeline
    from kit.run.plan import load_plan

    layers = []
    if args.params:
        layers.append(pipeline.load_params_file(args.params))
    if args.param:
        layers.append(pipeline.parse_overrides(args.param))
    return load_plan(args.pipeline, overrides=layers), layers


def cmd_validate(args) -> int:
    plan, _ = _load(args)
    pipeline = plan.pipeline
    print(f"{pipeline.path.name}: OK, {len(pipeline.steps)} steps in order: {' -> '.join(pipeline.steps)}")
    for step in pipeline.steps.values():
        shown = ", ".join(f"{k}={v!r}" for k, v in step.parameters.items()) or "defaults"
        print(f"  {step.name}: {step.spec.notebook} ({shown})")
    for gate in plan.gates:
        print(f"  gate {gate.label} ({gate.type})")
    for promotion in pipeline.spec.promotions:
        print(f"  promotes {pipeline.spec.model} ({promotion.source.step}.{promotion.source.output}) "
              f"to alias {promotion.alias!r} when every gate passes")
    return 0


def cmd_run(args) -> int:
    from kit.run import run

    plan, layers = _load(args)
    merged: dict = {}
    for layer in layers:
        for step, values in layer.items():
            merged.setdefault(step, {}).update(values)
    result = run(plan, jobs=args.jobs, overrides=merged)
    count = len(result.steps)
    print(f"pipeline {plan.name}: {'1 step' if count == 1 else f'all {count} steps'} done")
    if result.promotion is not None:
        print(result.promotion.report())
    print(f"  MLflow run {result.run_id} (experiment {plan.name}) in {result.tracking_uri}")
    print(f"  workspace  {result.workspace}")
    return 0


def cmd_contract(args) -> int:
    from kit.contracts import check
    from kit.contracts.report import text_table, write_html
    from kit.errors import GateFailure, SpecError

    if args.contract_command == "draft":
        from kit.contracts.draft import write_draft

        if args.out.exists() and not args.force:
            raise SpecError(f"{args.out} exists; it may hold your edits (use --force to overwrite)")
        drafted = write_draft(args.data, args.out)
        print(f"wrote {args.out}: {len(drafted['expectations'])} expectations drafted from {args.data}; "
              "review them before relying on it")
        for expectation in drafted["expectations"]:
            if "bound" in expectation.get("meta", {}):
                kwargs = expectation["kwargs"]
                print(f"  {kwargs['column']}: [{kwargs['min_value']}, {kwargs['max_value']}]: {expectation['meta']['bound']}")
        for warning in drafted["meta"].get("warnings", []):
            print(f"kit contract draft: warning: {warning}", file=sys.stderr)
        return 0
    result = check(args.contract, args.data)
    print(text_table(result).rstrip())
    if args.html:
        write_html(result, args.html)
        print(f"HTML report: {args.html}")
    if not result.success:
        raise GateFailure(f"{args.data} does not meet {args.contract}")
    return 0


def _registry():
    from kit.project import find_root
    from kit.registry import Registry

    return Registry(find_root())


def cmd_models(args) -> int:
    from kit.errors import SpecError
    from kit.registry.listing import describe, describe_version, overview

    if args.version and not args.name:
        raise SpecError("--version needs a model NAME: kit models NAME --version V")
    if args.version:
        print(describe_version(_registry(), args.name, args.version))
    else:
        print(describe(_registry(), args.name) if args.name else overview(_registry()))
    return 0


def cmd_promote(args) -> int:
    event = _registry().promote(args.name, args.version, args.alias, reason=args.reason, force=args.force)
    forced = " (FORCED)" if event.forced else ""
    print(f"{args.name}@{args.alias}: {'v' + event.from_version if event.from_version else '(none)'} -> "
          f"v{event.to_version}{forced}")
    return 0


def cmd_rollback(args) -> int:
    event = _registry().rollback(args.name, args.alias, reason=args.reason)
    print(f"{args.name}@{args.alias}: rolled back v{event.from_version} -> v{event.to_version}")
    return 0


def cmd_serve(args) -> int:
    from kit.errors import SpecError
    from kit.project import find_root

    other = {"edge": {"--log-dir": args.log_dir, "--log-inputs": args.log_inputs},
             "cloud": {"--reject-out-of-range": args.reject_out_of_range, "--fallback-url": args.fallback_url}}
    wrong = [option for option, value in other[args.target].items() if value]
    if wrong:
        raise SpecError(f"{', '.join(wrong)}: not an option of the {args.target} target")
    if args.target == "cloud":
        from kit.targets.cloud.front import serve as serve_cloud

        return serve_cloud(find_root(), args.name, args.alias, args.port, args.host,
                           log_dir=args.log_dir, log_inputs=args.log_inputs or "full")
    from kit.targets.edge.deploy import serve

    serve(find_root(), args.name, args.alias, args.port, args.host,
          reject_out_of_range=args.reject_out_of_range, fallback_url=args.fallback_url)
    return 0  # not reached: the server replaces this process


def cmd_deploy(args) -> int:
    from kit.project import find_root
    from kit.targets.edge.deploy import deploy

    version, out = deploy(find_root(), args.name, args.alias, args.out, reject_out_of_range=args.reject_out_of_range,
                          force=args.force)
    print(f"{args.name} v{version} ({args.name}@{args.alias}): wrote {out}/worker.js, manifest.json, README.md")
    return 0


COMMANDS = {"serve": cmd_serve, "deploy": cmd_deploy, "run": cmd_run, "validate": cmd_validate, "contract": cmd_contract, "models": cmd_models,
            "promote": cmd_promote, "rollback": cmd_rollback}

if __name__ == "__main__":
    sys.exit(main())
