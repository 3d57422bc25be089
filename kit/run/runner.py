"""Execute a checked pipeline: steps in dependency order (independent ones in parallel),
each in its own kernel and folder, each tracked as a nested MLflow run."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import checkpoint
from kit.errors import GateFailure, Interrupted, StepFailure
from kit.pipeline import Step, notebooks
from kit.run import workspace
from kit.run.kernels import WarmKernels
from kit.run.notebook import Execution
from kit.run.plan import Plan
from kit.run.render import Renderer
from kit.run.tracking import PipelineTracker

POLL_SECONDS = 0.25  # how often running steps are checked against their timeout


@dataclass
class StepResult:
    name: str
    state: str  # done | cached | failed | killed | skipped
    run_id: str | None = None
    duration: float = 0.0
    notebook: Path | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    error: str | None = None
    contract_failed: bool = False  # failed because data did not meet its contract (exit 3, not 1)
    checks: list = field(default_factory=list)  # (direction, parameter, ContractResult)
    contract_seconds: float = 0.0  # wall time of its contract checks, reading data and importing GX included
    peak_memory_mb: float | None = None  # the step kernel's peak resident memory
    cache_source: str | None = None  # cached: the run id of the execution that produced the outputs


@dataclass
class RunResult:
    run_id: str
    experiment_id: str
    tracking_uri: str
    workspace: Path
    steps: dict[str, StepResult]
    promotion: object | None = None  # kit.run.promotion.Outcome, when the pipeline has gates or promote
    seconds: dict[str, float] = field(default_factory=dict)  # total, contracts, gates (for the run's metrics)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.state == "failed"]


class _Terminated(BaseException):
    """SIGTERM, turned into an exception in the main thread so cleanup runs."""


def run(plan: Plan, jobs: int = 2, progress=None, overrides: dict[str, Any] | None = None,
        on_end=None, cache_options=None, executor=None) -> RunResult:
    """Run every step, then the gates and promotion. Raises StepFailure if a step crashed,
    GateFailure if a contract or gate failed, Interrupted on Ctrl-C / SIGTERM at any phase.
    `on_end(result)` is called with the result as far as it got, however the run ends (reports).
    `executor`: where steps' notebooks execute; None: kernels on this machine, else an object
    whose `execution(step, inputs, outputs, **fields)` returns what `Execution` is (run, stop,
    stop_reason, peak_memory_mb, output_path, wait_released), such as kit.run.remote.ClusterExecutor."""
    from kit.run import progress as progress_module

    pipeline = plan.pipeline
    progress = progress or progress_module.for_stream(list(pipeline.steps))
    started = time.monotonic()
    state: dict[str, Any] = {}  # what exists so far, for the interrupt's clean-up
    previous = _catch_sigterm()
    try:
        return _run(plan, jobs, progress, overrides or {}, started, state, cache_options, executor)
    except (KeyboardInterrupt, _Terminated) as stop:
        signum = signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM
        where = checkpoint.where()
        with _signals_held():
            if "renderer" in state:
                state["renderer"].finish(cancel=True)
            message = _record_interrupt(state, started)
        raise Interrupted(f"interrupted by {signal.Signals(signum).name} {where}: {message}", signum) from None
    finally:
        with _signals_held():  # no kernel left running, no page left half-logged
            _close_helpers(state)
        _restore_sigterm(previous)
        progress.close()
        if on_end is not None and "result" in state:
            on_end(state["result"])


def _run(plan: Plan, jobs: int, progress, overrides: dict[str, Any], started: float, state: dict,
         cache_options=None, executor=None) -> RunResult:
    from kit.run.cache_session import CacheOptions, Session, expected_executions

    pipeline = plan.pipeline
    cache_options = cache_options or CacheOptions()
    checkpoint.reset("start")
    # The first kernels start now, while MLflow is imported and the store opened (seconds); only
    # as many as steps the local cache index says will execute.
    # (None with an executor: its steps' kernels start where it runs them.)
    kernels = state["kernels"] = _warm_kernels(pipeline, 0 if executor else expected_executions(plan, cache_options))
    renderer = state["renderer"] = Renderer()
    tracker = state["tracker"] = PipelineTracker(pipeline.root, pipeline.name)
    caching = Session(plan, tracker.client, tracker.experiment_id, tracker.tracking_uri, cache_options)
    caching.check_only()  # before the pipeline run exists: a missing upstream is bad input
    run_id = tracker.start(pipeline, overrides, plan=plan)
    folder = workspace.create(pipeline.root, pipeline.name, run_id)
    result = state["result"] = RunResult(run_id, tracker.experiment_id, tracker.tracking_uri, folder, {})
    scheduler = _Scheduler(plan, tracker, folder, progress, result, caching, kernels=kernels, renderer=renderer,
                           executor=executor)
    checkpoint.checkpoint("start")

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="kit-step") as pool:
        try:
            scheduler.loop(pool)
        except (KeyboardInterrupt, _Terminated):
            with _signals_held():  # kill kernels before the pool waits for their threads
                scheduler.stop_all(pool, "interrupted")
            raise
    renderer.finish()  # every step's HTML page logged before the run is closed
    tracker.log_produced(result)

    result.seconds["contracts"] = sum(s.contract_seconds for s in result.steps.values())
    if result.failed:
        _finish(tracker, result, "FAILED", started)
        only_contracts = all(s.contract_failed for s in result.failed)
        raise (GateFailure if only_contracts else StepFailure)(_failure_report(result))
    if (plan.gates or pipeline.spec.promotions) and not caching.options.partial:  # --only: nothing to gate
        from kit.run.promotion import gatekeep

        gates_started = time.monotonic()
        try:
            result.promotion = gatekeep(plan, result, tracker, memo=caching.gate_memo(run_id),
                                         content_hash=caching.hash_of)
        except Exception:  # never leave the pipeline run RUNNING (registry errors); interrupts: see run()
            _finish(tracker, result, "FAILED", started)
            raise
        result.seconds["gates"] = time.monotonic() - gates_started
        if not result.promotion.passed:
            _finish(tracker, result, "FAILED", started)
            raise GateFailure(result.promotion.report())
    _finish(tracker, result, "FINISHED", started)
    caching.record_pipeline(run_id, folder)
    return result


def _warm_kernels(pipeline, count: int) -> WarmKernels:
    from kit import store

    env = {"MLFLOW_TRACKING_URI": store.tracking_uri(pipeline.root), "MLFLOW_DISABLE_TELEMETRY": "true",
           "KIT_PROJECT_ROOT": str(pipeline.root)}
    return WarmKernels(pipeline.spec.kernel, count, env, cwd=pipeline.root)


def _close_helpers(state: dict) -> None:
    for name in ("renderer", "kernels"):
        if name in state:
            state[name].close()


def _record_interrupt(state: dict, started: float) -> str:
    """Mark what the interrupt cut short: every open run KILLED, a registered version whose
    alias never moved marked interrupted. Returns what was done, in words."""
    tracker, result = state.get("tracker"), state.get("result")
    if tracker is None or result is None or tracker.run_id is None:
        return "no pipeline run was recorded yet"
    client = tracker.client
    for step in result.steps.values():
        if step.run_id and client.get_run(step.run_id).info.status == "RUNNING":
            client.set_tag(step.run_id, "kit.status", "killed")
            client.set_terminated(step.run_id, "KILLED")
    _finish(tracker, result, "KILLED", started)
    message = f"run {result.run_id} and its open step runs marked KILLED, kernels and child processes stopped"
    interrupted = _mark_interrupted_versions(tracker, result.run_id)
    if interrupted:
        message += (f"; {', '.join(interrupted)} (see `kit models`; the next promote, rollback or run for that "
                    "alias repairs it)")
    return message


def _mark_interrupted_versions(tracker, run_id: str) -> list[str]:
    """A version this run registered whose alias it did not move yet: say so on the version
    (a promotion that stopped after `pending` is left to the registry's own repair)."""
    from kit.registry import versions

    model = tracker.client.get_run(run_id).data.tags.get("kit.model")
    marked = []
    for key, number in tracker.client.get_run(run_id).data.tags.items():
        if not key.startswith("kit.model_version."):
            continue
        version = versions.get(tracker.client, model, number)
        state = version.tags.get(versions.PROMOTION_TAG)
        if state == "candidate":
            versions.set_tags(tracker.client, model, number, {versions.PROMOTION_TAG: "interrupted"})
            marked.append(f"{model} v{number} registered, alias not moved")
        elif state == "pending":
            marked.append(f"{model} v{number}'s promotion stopped midway")
    return marked


@contextmanager
def _signals_held():
    """Clean-up after an interrupt runs to its end: a second Ctrl-C or SIGTERM is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Scheduler:
    def __init__(self, plan: Plan, tracker: PipelineTracker, folder: Path, progress, result: RunResult, caching,
                 kernels: WarmKernels, renderer: Renderer, executor=None):
        self.plan, self.pipeline = plan, plan.pipeline
        self.executor = executor
        self.kernels, self.renderer = kernels, renderer
        self.tracker, self.folder, self.progress, self.result = tracker, folder, progress, result
        self.cache = caching
        self.pending = [name for name in self.pipeline.steps if name in caching.selected]
        self.running: dict[Future, tuple[Step, Execution, StepResult, float]] = {}

    def loop(self, pool: ThreadPoolExecutor) -> None:
        while self.pending or self.running:
            self._start_ready(pool)
            if not self.running:
                break
            finished, _ = wait(list(self.running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            self._enforce_timeouts()
            # Start the steps that were waiting on these before logging artifacts and
            # rendering HTML, so that bookkeeping overlaps the next kernel's work.
            closing = [self._collect(future) for future in finished]
            self._start_ready(pool)
            for step_result, step, execution in closing:
                execution.wait_released()  # its kernel.log is complete: finish_step logs it
                self._close(step_result, step)

    def _start_ready(self, pool: ThreadPoolExecutor) -> None:
        for name in list(self.pending):
            step = self.pipeline.steps[name]
            states = {n: getattr(self.result.steps.get(n), "state", "pending") for n in step.needs}
            blocked = [n for n, state in states.items() if state in ("failed", "killed", "skipped")]
            if blocked:
                self.pending.remove(name)
                reason = f"needs {blocked[0]!r}, which did not finish"
                self.result.steps[name] = StepResult(name, "skipped", error=reason)
                self.progress.step_skipped(name, reason)
            elif all(state in ("done", "cached") for state in states.values()):
                self.pending.remove(name)
                self._submit(pool, step)

    def _submit(self, pool: ThreadPoolExecutor, step: Step) -> None:
        step_dir = workspace.step_folder(self.folder, step.name)
        outputs = {param: step_dir / name for param, name in step.outputs.items()}
        inputs = {param: self.result.steps[up].outputs[out] for param, (up, out) in step.inputs.items()}
        injected = {**step.parameters, **{k: str(v) for k, v in {**inputs, **outputs}.items()}}
        started = time.monotonic()
        hit = self.cache.try_restore(step, inputs, outputs)
        if hit is not None:
            self._cached(step, hit, injected, outputs, started)
            return
        run_id = self.tracker.start_step(step, injected)
        env = {
            "MLFLOW_TRACKING_URI": self.tracker.tracking_uri,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": self.tracker.experiment_id,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "KIT_PROJECT_ROOT": str(self.pipeline.root),
            "KIT_STEP": step.name,
        }
        execution = self._execution(
            step, inputs, outputs,
            input_path=step.notebook,
            output_path=step_dir / notebooks.executed_name(step.notebook),  # a .py step too
            parameters=injected,
            kernel_name=self.pipeline.spec.kernel,
            cwd=step_dir,
            env=env,
            log_path=step_dir / "kernel.log",
            on_cell=lambda number, total, name=step.name: self._cell(name, number, total),
            kernel_pool=self.kernels,
        )
        step_result = StepResult(step.name, "running", run_id=run_id, notebook=execution.output_path, outputs=outputs)
        self.result.steps[step.name] = step_result
        self.progress.step_started(step.name)
        self.renderer.warm()
        job = _StepJob(self.plan, step, execution, step_result, inputs)
        self.running[pool.submit(job)] = (step, execution, step_result, time.monotonic())

    def _execution(self, step: Step, inputs: dict[str, Path], outputs: dict[str, Path], **fields) -> Execution:
        """The seam between deciding what runs and where it runs: a kernel here, or a task elsewhere."""
        if self.executor is None:
            return Execution(**fields)
        return self.executor.execution(step, inputs, outputs, **fields)

    def _cached(self, step: Step, hit, injected: dict[str, Any], outputs: dict[str, Path], started: float) -> None:
        """Outputs restored from the cache: a step run that says where they came from."""
        run_id = self.tracker.start_step(step, injected)
        step_result = StepResult(step.name, "cached", run_id=run_id, outputs=outputs, cache_source=hit.entry.run_id)
        self.result.steps[step.name] = step_result
        step_result.duration = time.monotonic() - started
        self.tracker.finish_step(run_id, "FINISHED", step_result.duration, None, outputs)
        step_result.checks = self.cache.log_cached(run_id, hit)  # the producer's contract results, as evidence
        self.progress.step_finished(step.name, "cached", f"outputs of run {hit.entry.run_id}")

    def _cell(self, step: str, number: int, total: int) -> None:
        checkpoint.checkpoint("step", f"step {step!r}, cell {number} of {total}")
        self.progress.cell(step, number, total)

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for step, execution, _, started in self.running.values():
            if now - started > step.timeout:
                execution.stop(f"timed out after {step.timeout:g}s (set `timeout` on the step to allow longer)")

    def _collect(self, future: Future) -> tuple[StepResult, Step, Execution]:
        step, execution, step_result, started = self.running.pop(future)
        step_result.duration = time.monotonic() - started
        exc = future.exception()
        step_result.contract_failed = isinstance(exc, _ContractFailed)
        error = str(exc) if step_result.contract_failed else _describe_error(exc, execution, step)
        if error is None:
            missing = [f"{p} ({path})" for p, path in step_result.outputs.items() if not path.exists()]
            if missing:
                error = f"the notebook finished but did not write its declared output {', '.join(missing)}"
        step_result.peak_memory_mb = execution.peak_memory_mb
        step_result.state = "failed" if error else "done"
        step_result.error = error
        self.progress.step_finished(step.name, step_result.state, _first_line(error))
        return step_result, step, execution

    def _close(self, step_result: StepResult, step: Step) -> None:
        status = "FINISHED" if step_result.state == "done" else ("KILLED" if step_result.state == "killed" else "FAILED")
        for direction, param, check in step_result.checks:
            self.tracker.log_contract(step_result.run_id, direction, param, check)
        if step_result.peak_memory_mb is not None:
            self.tracker.client.log_metric(step_result.run_id, "peak_memory_mb", round(step_result.peak_memory_mb, 1))
        self.tracker.finish_step(step_result.run_id, status, step_result.duration, step_result.notebook,
                                 step_result.outputs if step_result.state == "done" else {}, step_result.error,
                                 contract_failed=step_result.contract_failed)
        if step_result.state == "done":
            self.cache.record(step, step_result.run_id, step_result.outputs)
        if step_result.notebook is not None and step_result.notebook.is_file():
            run_id = step_result.run_id
            self.renderer.submit(step_result.notebook, lambda page: self.tracker.log_page(run_id, page))

    def stop_all(self, pool: ThreadPoolExecutor, reason: str) -> None:
        """Kill every running kernel, wait for their threads, and mark their runs KILLED."""
        for _, execution, _, _ in self.running.values():
            execution.stop(reason)
        pool.shutdown(wait=True, cancel_futures=True)
        for future in list(self.running):
            step, _, step_result, started = self.running.pop(future)
            step_result.state, step_result.error = "killed", reason
            step_result.duration = time.monotonic() - started
            self.progress.step_finished(step.name, "killed")
            self._close(step_result, step)
        for name in self.pending:
            self.result.steps[name] = StepResult(name, "skipped", error=reason)


class _ContractFailed(Exception):
    """Data did not meet its contract; the message holds the report table."""


class _StepJob:
    """What a worker thread does for a step: input contracts, the notebook, output contracts."""

    def __init__(self, plan: Plan, step: Step, execution: Execution, step_result: StepResult, inputs: dict[str, Path]):
        self.plan, self.step, self.execution, self.step_result, self.inputs = plan, step, execution, step_result, inputs

    def __call__(self) -> None:
        self._check("input", self.inputs)
        self.execution.run()
        self._check("output", self.step_result.outputs)

    def _check(self, direction: str, paths: dict[str, Path]) -> None:
        if not any((self.step.name, param) in self.plan.contracts for param in paths):
            return
        started = time.monotonic()
        try:
            self._check_contracts(direction, paths)
        finally:
            self.step_result.contract_seconds += time.monotonic() - started

    def _check_contracts(self, direction: str, paths: dict[str, Path]) -> None:
        from kit.contracts import check
        from kit.contracts.report import text_table

        failed = []
        for param, path in paths.items():
            contract = self.plan.contracts.get((self.step.name, param))
            if contract is None:
                continue
            checkpoint.checkpoint("contract", f"step {self.step.name!r}, {direction} {param!r}")
            if self.execution.stop_reason:  # interrupted: do not start a check nobody will read
                raise _ContractFailed(f"step {self.step.name!r}: {self.execution.stop_reason}")
            outcome = check(contract, path)
            self.step_result.checks.append((direction, param, outcome))
            if not outcome.success:
                failed.append(text_table(outcome))
        if failed:
            when = "before it ran" if direction == "input" else "after it ran"
            raise _ContractFailed(f"step {self.step.name!r}: {direction} data failed its contract {when}\n"
                                  + "\n".join(failed))


def _describe_error(exc: BaseException | None, execution: Execution, step: Step) -> str | None:
    if exc is None:
        return None
    from papermill.exceptions import PapermillExecutionError

    where = f"step {step.name!r} ({step.spec.notebook})"
    if execution.stop_reason:
        return f"{where} {execution.stop_reason}"
    if isinstance(exc, PapermillExecutionError):
        first_line = next((line for line in exc.source.splitlines() if line.strip()), "").strip()
        cell = _source_cell_number(execution.output_path, exc.cell_index)
        return (f"{where} failed in cell {cell} of the notebook (In [{exc.exec_count}] in the executed copy): "
                f"{exc.ename}: {exc.evalue}\n    the cell starts: {first_line[:120]}")
    name = type(exc).__name__
    if name == "DeadKernelError":
        return f"{where}: the kernel died (out of memory, a crash in native code, or os._exit); last cell shown in the executed notebook"
    return f"{where} could not run: {name}: {exc}"


def _source_cell_number(executed: Path, cell_index: int) -> int:
    """1-based number of the failing cell in the user's notebook: papermill's injected
    parameters cell exists only in the executed copy."""
    import json

    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"][:cell_index]
    except (OSError, ValueError, KeyError):
        return cell_index + 1
    injected = sum("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    return cell_index + 1 - injected


def _first_line(text: str | None) -> str:
    return (text or "").splitlines()[0] if text else ""


def _failure_report(result: RunResult) -> str:
    lines = []
    for step in result.failed:
        lines.append(step.error or f"step {step.name!r} failed")
        if step.notebook and step.notebook.exists() and not step.contract_failed:
            lines.append(f"    executed notebook with the traceback: {step.notebook}")
    skipped = [s.name for s in result.steps.values() if s.state == "skipped"]
    if skipped:
        lines.append(f"not run because a step they need failed: {', '.join(skipped)}")
    lines.append(f"pipeline run {result.run_id} marked FAILED")
    return "\n".join(lines)


def _finish(tracker: PipelineTracker, result: RunResult, status: str, started: float) -> None:
    result.seconds["total"] = time.monotonic() - started
    for name, value in result.seconds.items():
        tracker.client.log_metric(result.run_id, f"kit.{name}_s", round(value, 3))
    tracker.finish(status, _summary(result))


def _summary(result: RunResult) -> dict[str, Any]:
    return {
        "workspace": str(result.workspace),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "steps": {
            name: {"state": s.state, "run_id": s.run_id, "duration_s": round(s.duration, 3), "error": s.error,
                   "peak_memory_mb": s.peak_memory_mb, "cache_source_run": s.cache_source}
            for name, s in result.steps.items()
        },
    }


def _catch_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Terminated()

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
