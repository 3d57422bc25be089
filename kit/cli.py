"""The `kit` command: parse arguments, call one function, map the error family to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path

from kit.errors import GateFailure, Interrupted, KitError, LibraryError, PermissionDenied, SpecError, StepFailure

# Targets plug in their commands through these entry point groups (pyproject.toml), as they
# plug in their gates through `kit.gates`: the CLI never imports a target by name. An entry
# point names a class with `help` (one line), `add_arguments(parser)` (its own options) and
# `run(args) -> exit code`; the CLI gives every target NAME and --alias (and, to serve,
# --port and --host).
TARGET_COMMANDS = {"serve": "kit.serve", "deploy": "kit.deploy"}

# The one mapping from errors to exit codes (the most specific class in an error's MRO wins).
# Library errors reaching a command mean it was handed something a library refused: bad input.
# A request the tracking server refused (a READ user promoting, wrong credentials) is bad input too.
EXIT_CODES: dict[type[KitError], int] = {SpecError: 2, LibraryError: 2, PermissionDenied: 2, GateFailure: 3,
                                         StepFailure: 1}


def build_parser(load_targets: Collection[str] = TARGET_COMMANDS) -> argparse.ArgumentParser:
    """The whole command line; the targets of `serve` and `deploy` come from entry points, loaded
    only for the commands in `load_targets` (importing a target costs a second or more)."""
    parser = argparse.ArgumentParser(prog="kit", description="Run parameterized notebooks as a tracked pipeline.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def pipeline_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("pipeline", type=Path, help="pipeline file, e.g. pipelines/iris.yaml")
        sub.add_argument("-p", "--param", action="append", default=[], metavar="STEP.PARAM=VALUE",
                         help="override a notebook parameter (repeatable); VALUE is read as YAML 1.2: 5, 017 (17), "
                              "1e-3, true, [16, 8]; yes, no and dates stay strings")
        sub.add_argument("--params", type=Path, metavar="FILE.yaml",
                         help="overrides from a file: {step: {param: value}}; -p wins over it")

    def cluster_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--cluster", metavar="tcp://HOST:PORT", default=None,
                         help="run each step as a task on this Dask scheduler (default: $KIT_CLUSTER; unset: this "
                              "machine); the tracking server must be reachable from the workers")

    run = commands.add_parser("run", help="validate, then run every step and track it in MLflow")
    pipeline_args(run)
    run.add_argument("-j", "--jobs", type=int, default=None,
                     help="steps run at the same time when independent (default 2; on a cluster: its worker threads)")
    run.add_argument("--junit", type=Path, metavar="FILE.xml",
                     help="also write the run as JUnit XML (a test case per step, contract check and gate) for CI; "
                          "written whatever the exit code")
    run.add_argument("--force", action="append", nargs="?", const="*", default=[], metavar="STEP",
                     help="execute steps even if the cache holds their outputs: every step (and measure every gate "
                          "again rather than reuse a passed measurement of the same inputs), or STEP and everything "
                          "downstream of it (repeatable)")
    run.add_argument("--only", nargs="+", default=[], metavar="STEP",
                     help="run just these steps; the steps they need come from the cache (exit 2 if one is not there)")
    cluster_option(run)

    sweep = commands.add_parser("sweep", help="run the pipeline once per variant of some parameters (a grid, a "
                                              "sample of it, or Optuna trials), then promote the best")
    pipeline_args(sweep)
    sweep.add_argument("--grid", action="append", default=[], metavar="STEP.PARAM=V1,V2,...",
                       help="values to sweep (repeatable; every combination is a variant), read as -p values are; "
                            "LOW..HIGH with --search optuna; replaces the pipeline file's sweep: grid")
    sweep.add_argument("--random", type=int, metavar="N", help="run N variants sampled from the grid (seeded)")
    sweep.add_argument("--search", choices=["optuna"], help="choose variants with Optuna (ask-and-tell), --trials N")
    sweep.add_argument("--trials", type=int, metavar="N", help="with --search optuna: how many variants")
    sweep.add_argument("--seed", type=int, help="seed of --random and of Optuna's sampler (default 0)")
    sweep.add_argument("--metric", metavar="STEP.METRIC", help="the metric a step logs that judges the variants")
    sweep.add_argument("--direction", choices=["max", "min"], help="max: higher is better; min: lower is better")
    sweep.add_argument("-j", "--jobs", type=int,
                       help="variants run at the same time (default 2; on a cluster: its worker threads)")
    cluster_option(sweep)
    sweep.add_argument("--no-promote", action="store_true",
                       help="only compare: the best variant does not go through gates and promotion")

    cache = commands.add_parser("cache", help="the step cache: list its entries, prune old ones")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    cache_commands.add_parser("list", help="every cached step result in the tracking store")
    prune = cache_commands.add_parser("prune", help="forget cache entries older than DAYS (their runs stay as history)")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")

    validate = commands.add_parser("validate", help="check the pipeline file and parameters without running anything")
    pipeline_args(validate)

    dev = commands.add_parser("dev", help="a working copy of one step's notebook, fed with the latest run's upstream "
                                          "outputs, to develop in JupyterLab; --save writes it back")
    dev.add_argument("pipeline", type=Path, help="pipeline file, e.g. pipelines/iris.yaml")
    dev.add_argument("step", help="the step to work on, e.g. evaluate")
    dev.add_argument("--save", action="store_true",
                     help="write the working copy back to the step's notebook, without the injected cell")
    dev.add_argument("--force", action="store_true",
                     help="with --save: overwrite the notebook even if it changed since the working copy was made")

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

    server = commands.add_parser("server", help="a team stack on this machine: PostgreSQL and an MLflow server "
                                                "with authentication (for trying and for tests)")
    server_commands = server.add_subparsers(dest="server_command", required=True, metavar="ACTION")
    server_up = server_commands.add_parser("up", help="start it (or find it running) and print the shell lines "
                                                      "to `eval` that point every kit command at it")
    server_up.add_argument("--port", type=int, help="the MLflow server's port (default: the last one if free, "
                                                    "else any free port)")
    server_down = server_commands.add_parser("down", help="stop it, keeping every run, model and user")
    for sub in (server_up, server_down):
        sub.add_argument("--dir", type=Path, help="where its databases, artifacts and logs live "
                                                  "(default: mlruns/server in the project)")

    cluster = commands.add_parser("cluster", help="a Dask scheduler and workers on this machine, for trying "
                                                  "`kit run --cluster` and for tests")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    cluster_up = cluster_commands.add_parser("up", help="start them (or find them running) and print the line to "
                                                        "`eval` that points `kit run` at them")
    cluster_up.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    cluster_up.add_argument("--threads", type=int, default=1,
                            help="threads per worker, each running one step's kernel at a time (default 1)")
    cluster_up.add_argument("--resources", default="", metavar='"NAME=N ..."',
                            help='what each worker offers besides cpus and memory, e.g. "gpu=1"')
    cluster_up.add_argument("--hide", type=Path, action="append", default=[], metavar="FOLDER",
                            help="run the workers where FOLDER (e.g. your project) is empty, as on another machine "
                                 "(a private mount namespace: needs root; repeatable)")
    cluster_down = cluster_commands.add_parser("down", help="stop the scheduler and the workers")
    for sub in (cluster_up, cluster_down):
        sub.add_argument("--dir", type=Path, help="where its state, logs and worker folders live "
                                                  "(default: mlruns/cluster in the project)")

    serve = commands.add_parser("serve", help="serve the version that holds an alias on a target",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    deploy = commands.add_parser("deploy", help="write a self-contained deployable of the version that holds an alias",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for command, parent in (("serve", serve), ("deploy", deploy)):
        if command in load_targets:
            _add_targets(parent, command)
    return parser


def exit_code(error: KitError) -> int:
    if isinstance(error, Interrupted):
        return 128 + error.signal_number  # as a shell reports a process killed by that signal
    return next((EXIT_CODES[kind] for kind in type(error).__mro__ if kind in EXIT_CODES), 1)


def main(argv: list[str] | None = None) -> int:
    """The `kit` program (`argv` None: this process's command line, and the process ends right
    after), or one command called in-process with its `argv` (tests)."""
    code = _command(argv)
    if argv is None:  # the process ends next: not the ~1.1 s final collection (kit.heap)
        from kit.heap import skip_final_collection

        skip_final_collection()
    return code


def _command(argv: list[str] | None) -> int:
    argv = _force_before_pipeline(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(load_targets=TARGET_COMMANDS if command is None else [command])
    args, extra = parser.parse_known_args(argv)
    try:
        if extra:
            _refuse(parser, args, extra)
        return _refusals_as_kit_errors(COMMANDS[args.command], args)
    except KitError as error:
        print(f"kit {args.command}: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:  # outside a pipeline run (which reports its own): one line, no traceback
        from kit.checkpoint import where

        print(f"kit {args.command}: interrupted by SIGINT {where()}".rstrip(), file=sys.stderr)
        return 130


def _force_before_pipeline(argv: list[str]) -> list[str]:
    """`kit run --force pipelines/x.yaml`: a bare --force before the pipeline file, not a step
    named like a pipeline file (argparse would take the file as --force's STEP)."""
    return ["--force=*" if arg == "--force" and index + 1 < len(argv) and argv[index + 1].endswith((".yaml", ".yml"))
            else arg for index, arg in enumerate(argv)]


def _refusals_as_kit_errors(command, args) -> int:
    """The tracking server's 401 / 403, from any command, as a one-line PermissionDenied."""
    try:
        return command(args)
    except Exception as error:
        from kit.store import refusal

        refused = refusal(error)
        if refused is None:
            raise
        raise refused from None


def _add_targets(parent: argparse.ArgumentParser, command: str) -> None:
    """One subcommand per target registered in the command's entry point group."""
    from importlib.metadata import entry_points

    group = TARGET_COMMANDS[command]
    found = parent.add_subparsers(dest="target", required=True, metavar="TARGET")
    usages, options = [], {}
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        target = entry.load()()
        sub = found.add_parser(entry.name, help=target.help, description=target.help)
        sub.add_argument("name", help="registered model name")
        sub.add_argument("--alias", required=True, help="the version that holds this alias")
        if command == "serve":
            sub.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free port)")
            sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        target.add_arguments(sub)
        sub.set_defaults(target_command=target)
        options[entry.name] = {option for action in sub._actions for option in action.option_strings}
        usages.append(f"  {entry.name}: {target.help}\n    {' '.join(sub.format_usage().split())}")
    parent.set_defaults(target_options=options)
    parent.epilog = (f"targets found (entry point group {group}):\n" + "\n".join(usages) if usages else
                     f"no targets found: install one that registers in the entry point group {group}")


def _refuse(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Unknown arguments: name the target they belong to, else argparse's own error (exit 2)."""
    if args.command in TARGET_COMMANDS:
        theirs = set().union(*(found for name, found in args.target_options.items() if name != args.target))
        wrong = [arg.split("=")[0] for arg in extra if arg.split("=")[0] in theirs]
        if wrong:
            raise SpecError(f"{', '.join(wrong)}: not an option of the {args.target} target")
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


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
    from kit.pipeline.parameters import short

    plan, layers = _load(args)
    pipeline = plan.pipeline
    axes = []
    if pipeline.spec.sweep is not None and pipeline.spec.sweep.grid:  # its values checked as `kit sweep` does
        from kit.run.sweep.settings import block_axes, check_values

        axes = block_axes(pipeline)
        check_values(pipeline, layers, axes)
    print(f"{pipeline.path.name}: OK, {len(pipeline.steps)} steps in order: {' -> '.join(pipeline.steps)}")
    if len(pipeline.files) > 1:
        print(f"  merged from {' <- '.join(_relative(f, pipeline.root) for f in pipeline.files)} (extends)")
    for step in pipeline.steps.values():
        shown = ", ".join(f"{k}={short(v)}" for k, v in step.parameters.items()) or "defaults"
        print(f"  {step.name}: {step.spec.notebook} ({shown})  [from {step.defined_at}]")
    for gate in plan.gates:
        print(f"  gate {gate.label} ({gate.type})")
    for promotion in pipeline.spec.promotions:
        print(f"  promotes {pipeline.spec.model} ({promotion.source.step}.{promotion.source.output}) "
              f"to alias {promotion.alias!r} when every gate passes")
    if axes:
        block = pipeline.spec.sweep
        print(f"  sweep: {', '.join(f'{a.name} ({a.shown()})' for a in axes)}"
              + (f" by {block.metric} ({block.direction or 'direction not set'})" if block.metric else ""))
    return 0


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def cmd_run(args) -> int:
    if args.junit is None:
        return _run(args, {})
    from kit.run import junit
    from kit.store import refusal

    ended: dict = {}  # what the run got to: its plan and result, for the report
    try:
        code = _run(args, ended)
    except BaseException as error:
        name = ended["plan"].name if "plan" in ended else args.pipeline.stem
        junit.write(args.junit, name, ended.get("plan"), ended.get("result"),
                    refusal(error) or error)
        raise
    junit.write(args.junit, ended["plan"].name, ended["plan"], ended.get("result"))
    print(f"  JUnit XML  {args.junit}")
    return code


def _run(args, ended: dict) -> int:
    from kit.run.cache_session import CacheOptions, check_options, up_to_date

    plan, layers = _load(args)
    ended["plan"] = plan
    options = CacheOptions(force=tuple(args.force), only=tuple(args.only))
    check_options(plan.pipeline, options)
    if not options.force and not options.only and args.junit is None:
        # Before MLflow is imported (seconds): a pipeline whose every step is served by the cache
        # and that has no gates or promotion would only repeat its last run. (With --junit the run
        # goes the normal way, so the report has a case per cached step.)
        record = up_to_date(plan)
        if record is not None:
            count = len(plan.pipeline.steps)
            print(f"pipeline {plan.name}: up to date, all {count} steps cached (nothing changed since MLflow run "
                  f"{record['run_id']}); nothing executed or recorded, use --force to execute again")
            print(f"  workspace  {record['workspace']}")
            return 0
    from kit.run import run

    merged: dict = {}
    for layer in layers:
        for step, values in layer.items():
            merged.setdefault(step, {}).update(values)
    executor = _cluster_executor(args, plan)
    try:
        result = run(plan, jobs=args.jobs or (executor.slots if executor else 2), overrides=merged,
                     on_end=lambda result: ended.update(result=result), cache_options=options, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    count = len(result.steps)
    cached = [name for name, step in result.steps.items() if step.state == "cached"]
    done = f"{'1 step' if count == 1 else f'all {count} steps'} done"
    if cached:
        done += f" ({len(cached)} cached: {', '.join(cached)})"
    print(f"pipeline {plan.name}: {done}")
    if options.only and (plan.gates or plan.pipeline.spec.promotions):
        print("  gates and promotion not run: --only runs part of the pipeline")
    if result.promotion is not None:
        print(result.promotion.report())
    print(f"  MLflow run {result.run_id} (experiment {plan.name}) in {result.tracking_uri}")
    print(f"  workspace  {result.workspace}")
    return 0


def cmd_sweep(args) -> int:
    from kit.run.sweep import sweep
    from kit.run.sweep.settings import settings

    plan, layers = _load(args)
    executor = _cluster_executor(args, plan)
    try:
        jobs = args.jobs
        if executor is not None and jobs is None and getattr(plan.pipeline.spec.sweep, "jobs", None) is None:
            jobs = executor.slots  # one variant per worker thread
        chosen = settings(plan.pipeline, layers, grid=args.grid, random=args.random, search=args.search,
                          trials=args.trials, seed=args.seed, metric=args.metric, direction=args.direction,
                          jobs=jobs, promote=not args.no_promote)
        result = sweep(plan, chosen, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    best = result.best
    print(f"sweep of {plan.name}: best {best.label} with {chosen.metric_name} = {best.metric:.6g} "
          f"({', '.join(f'{k}={v}' for k, v in best.values.items())}), MLflow run {best.run_id}")
    if not chosen.promote:
        print("  not promoted (--no-promote)")
    elif result.promotion is None:
        print(f"  {plan.pipeline.path.name} has no gates or promotion: nothing to promote")
    print(f"  sweep run {result.run_id} (experiment {plan.name}) in {result.tracking_uri}; table: "
          f"{', '.join(result.artifacts)}")
    return 0


def _cluster_executor(args, plan):
    """The Dask executor of `--cluster` / $KIT_CLUSTER (None: run on this machine), checked before
    any run exists: an unreachable scheduler or store, or resources no worker offers, are bad input."""
    from kit.run import remote

    address = remote.address_from(args.cluster)
    if not address:
        return None
    from kit.store import tracking_uri

    executor = remote.ClusterExecutor(address, tracking_uri(plan.pipeline.root))
    try:
        executor.check(plan)
    except BaseException:
        executor.close()
        raise
    return executor


def cmd_dev(args) -> int:
    from kit import pipeline
    from kit.run import dev

    loaded = pipeline.load(args.pipeline)
    step = dev.find_step(loaded, args.step)
    command = f"kit dev {args.pipeline} {args.step}"
    if args.force and not args.save:
        raise SpecError("--force goes with --save: kit dev PIPELINE STEP --save --force")
    if args.save:
        written = dev.save(loaded, step, command, force=args.force)
        print(f"saved {dev.working_copy_path(loaded, step)} to {', '.join(_relative(p, loaded.root) for p in written)} "
              "(injected cell and outputs removed)")
        return 0
    copy = dev.prepare(loaded, step, command)
    origin = f"upstream outputs of run {copy.run_id}" if copy.run_id else "no upstream inputs"
    print(f"working copy of step {step.name!r} ({step.spec.notebook}), {origin}: {copy.path}")
    if copy.kept_edits:
        print("  kept your edits in it and refreshed the injected cell (delete the file to start over from the source)")
    url = dev.lab_url(copy.path)
    if url:
        print(f"  open in JupyterLab: {url}")
    elif dev.lab_servers():
        print("  the running JupyterLab does not serve this folder: restart it from the project with `make lab`")
    else:
        print("  start JupyterLab with `make lab`, then run this again for the link")
    print(f"  when done: {command} --save")
    return 0


def cmd_contract(args) -> int:
    from kit.contracts import check
    from kit.contracts.report import text_table, write_html

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


def cmd_server(args) -> int:
    from kit import server
    from kit.project import find_root, mlruns_dir

    folder = args.dir or mlruns_dir(find_root()) / "server"
    if args.server_command == "down":
        stopped = server.down(folder)
        print(f"kit server: stopped {' and '.join(stopped)}; everything is kept in {folder.resolve()}" if stopped
              else f"kit server: nothing was running in {folder.resolve()}", file=sys.stderr)
        return 0
    stack = server.up(folder, args.port, say=lambda line: print(line, file=sys.stderr))
    print(f"kit server: {'up' if stack.started else 'already running'} at {stack.uri} (MLflow pid {stack.mlflow_pid}, "
          f"PostgreSQL pid {stack.postgres_pid}, files in {stack.folder}); user {stack.username}. "
          f"Stop it with `kit server down --dir {stack.folder}`", file=sys.stderr)
    print(stack.exports())  # stdout holds only these lines: eval "$(kit server up)"
    return 0


def cmd_cluster(args) -> int:
    from kit.project import find_root, mlruns_dir
    from kit.run import cluster

    folder = args.dir or mlruns_dir(find_root()) / "cluster"
    if args.cluster_command == "down":
        stopped = cluster.down(folder)
        print(f"kit cluster: stopped {', '.join(stopped)}" if stopped
              else f"kit cluster: nothing was running in {folder.resolve()}", file=sys.stderr)
        return 0
    found = cluster.up(folder, args.workers, args.threads, cluster.parse_resources(args.resources), args.hide,
                       say=lambda line: print(line, file=sys.stderr))
    print(f"kit cluster: {'up' if found.started else 'already running'} at {found.address} (scheduler pid "
          f"{found.scheduler_pid}, worker pids {', '.join(map(str, found.worker_pids))}, files in {found.folder}). "
          f"Stop it with `kit cluster down --dir {found.folder}`", file=sys.stderr)
    print(found.exports())  # stdout holds only this line: eval "$(kit cluster up)"
    return 0


def cmd_cache(args) -> int:
    from kit.gates import reuse
    from kit.project import find_root
    from kit.run import cache

    root = find_root()
    if args.cache_command == "list":
        print(cache.listing(root))
        print(f"{reuse.count(reuse.folder(cache.cache_dir(root)))} passed gate results kept for reuse "
              f"(kit.gates.reuse; `kit run --force` measures every gate again)")
        return 0
    if args.older_than < 0:
        raise SpecError(f"--older-than {args.older_than:g}: DAYS must be 0 or more")
    pruned, kept = cache.prune(root, args.older_than)
    gates = reuse.folder(cache.cache_dir(root))
    held = reuse.count(gates)
    dropped = reuse.prune(gates, args.older_than * 86400)
    print(f"pruned {pruned} cache entries older than {args.older_than:g} days, kept {kept} "
          f"(the runs and their artifacts stay in the store as history); pruned {dropped} of {held} kept gate results")
    return 0


def cmd_target(args) -> int:
    """`kit serve TARGET` and `kit deploy TARGET`: the target's own command runs."""
    return args.target_command.run(args)


COMMANDS = {"run": cmd_run, "sweep": cmd_sweep, "validate": cmd_validate, "dev": cmd_dev, "contract": cmd_contract, "models": cmd_models,
            "promote": cmd_promote, "rollback": cmd_rollback, "server": cmd_server, "cache": cmd_cache,
            "cluster": cmd_cluster,
            "serve": cmd_target, "deploy": cmd_target}

if __name__ == "__main__":
    sys.exit(main())
