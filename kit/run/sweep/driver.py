"""`kit sweep`: one sweep run, a variant run per combination (nested under it, its steps nested
under the variant), up to `jobs` variants at a time, then the table, and the best variant
through the pipeline's gates and promotion as `kit run` would take it.

Steps the swept parameters do not reach (the shared prefix) run once: the first variant starts
alone and the others start when it has finished those steps, so they find them in the step
cache instead of executing them again side by side.

Ctrl-C / SIGTERM: the runner's own interrupt handling runs in every running variant (the signal,
which only the main thread receives, is raised in their threads): kernels stopped, runs KILLED.
"""

from __future__ import annotations

import ctypes
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kit.errors import GateFailure, Interrupted, StepFailure
from kit.run.progress import PlainProgress
from kit.run.runner import _catch_sigterm, _mark_interrupted_versions, _restore_sigterm, _signals_held, _Terminated
from kit.run.sweep import search
from kit.run.sweep.settings import Settings, layer
from kit.run.sweep.variant import VariantRun, read_metric, record, run_variant

POLL_SECONDS = 0.25
STOP_WAIT_SECONDS = 120  # for the variants to stop their kernels and mark their runs after an interrupt


@dataclass
class SweepResult:
    run_id: str
    experiment_id: str
    tracking_uri: str
    settings: Settings
    variants: list[VariantRun]
    note: str = ""
    best: VariantRun | None = None
    promotion: Any = None  # kit.run.promotion.Outcome
    seconds: float = 0.0
    artifacts: list[str] = field(default_factory=list)  # on the sweep run


def affected_steps(pipeline, settings: Settings) -> set[str]:
    """The swept steps and everything downstream of them: what differs between variants."""
    swept = {axis.step for axis in settings.axes}
    return swept.union(*(pipeline.dependents(name) for name in swept))


class _VariantProgress(PlainProgress):
    """A variant's step events as plain lines, `[v2 train] done in 3.1s`, without cell lines; tells
    the sweep when the shared steps have finished."""

    def __init__(self, variant: VariantRun, shared: set[str], on_shared, stream=None):
        super().__init__([], stream)
        self.variant, self.waiting, self.on_shared = variant, set(shared), on_shared
        if not self.waiting:
            on_shared(True)

    def _say(self, text: str) -> None:
        super()._say(f"[{self.variant.label} " + text[1:])

    def cell(self, step: str, number: int, total: int) -> None:
        pass

    def step_finished(self, step: str, state: str, detail: str = "") -> None:
        super().step_finished(step, state, detail)
        if step in self.waiting:
            self.waiting.discard(step)
            if state not in ("done", "cached"):
                self.on_shared(False, step)
            elif not self.waiting:
                self.on_shared(True)

    def step_skipped(self, step: str, reason: str) -> None:
        super().step_skipped(step, reason)
        if step in self.waiting:
            self.on_shared(False, step)


class Sweep:
    def __init__(self, plan, settings: Settings, stream=None, executor=None):
        self.plan, self.settings, self.pipeline = plan, settings, plan.pipeline
        self.executor = executor  # kit.run.remote.ClusterExecutor: the variants' steps run on its workers
        self.stream = stream or sys.stderr
        self.chooser = search.chooser(settings)
        self.shared = set(self.pipeline.steps) - affected_steps(self.pipeline, settings)
        self.shared_state: tuple | None = None  # (True,) once the first variant finished the shared steps
        self.variants: list[VariantRun] = []
        self.running: dict[threading.Thread, VariantRun] = {}
        self.interruptible: set[int] = set()  # thread idents inside run_variant
        self.lock = threading.Lock()
        self.finished: queue.Queue = queue.Queue()
        self.client = None
        self.run_id: str | None = None
        self.shared_recorded = False
        self.started = time.monotonic()
        self.merged_base: dict[str, dict[str, Any]] = {}
        for base in settings.base:
            for step, values in base.items():
                self.merged_base.setdefault(step, {}).update(values)

    # -- the sweep run ------------------------------------------------------------------------

    def run(self) -> SweepResult:
        from kit import store
        from kit.run import provenance

        started = time.monotonic()
        root = self.pipeline.root
        self.client = store.client(root)
        experiment_id = store.ensure_experiment(self.client, root, self.pipeline.name)
        s = self.settings
        tags = {"mlflow.runName": f"{self.pipeline.name} sweep", "kit.kind": "sweep", "kit.pipeline": self.pipeline.name,
                "kit.model": self.pipeline.spec.model, "kit.sweep.metric": s.metric_name,
                "kit.sweep.direction": s.direction, "kit.sweep.search": s.search, "kit.status": "running",
                **provenance.tags(root)}
        result = SweepResult("", experiment_id, store.tracking_uri(root), s, self.variants, self.chooser.note)
        previous = _catch_sigterm()  # from here on an interrupt leaves the sweep run KILLED, not RUNNING
        try:
            self.run_id = result.run_id = self.client.create_run(experiment_id, tags=tags).info.run_id
            self._begin()
            try:
                self._loop()
            except Exception:  # the sweep itself broke (the store, a bug): stop the variants, keep the runs honest
                with _signals_held():
                    self._stop(KeyboardInterrupt, result, status="FAILED")
                raise
            result.best = self._best()
            result.seconds = time.monotonic() - started
            self._report(result)
            if result.best is None:
                self._finish("FAILED", result)
                raise StepFailure(f"every variant failed; sweep run {self.run_id} marked FAILED")
            if s.promote and (self.plan.gates or self.pipeline.spec.promotions):
                self._promote(result)
            self._finish("FINISHED", result)
            return result
        except (KeyboardInterrupt, _Terminated) as stop:
            signum = signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM
            with _signals_held():
                message = self._stop(type(stop), result)
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}: {message}", signum) from None
        finally:
            _restore_sigterm(previous)

    def _begin(self) -> None:
        """The sweep's settings on its run, and what it is about to do, in words."""
        from mlflow.entities import Param

        s = self.settings
        self.client.log_batch(self.run_id, params=[
            Param("search", s.search), Param("metric", s.metric_name), Param("direction", s.direction),
            Param("seed", str(s.seed)), Param("jobs", str(s.jobs)), Param("variants", str(self.chooser.total)),
            *[Param(f"grid.{axis.name}", axis.shown()[:6000]) for axis in s.axes]])
        self.client.log_text(self.run_id, self.pipeline.text, f"pipeline/{self.pipeline.path.name}")
        print(f"sweep of {self.pipeline.name}: {self.chooser.note}; {s.metric_name} ({s.direction}); "
              f"{s.jobs} at a time; MLflow run {self.run_id}", file=self.stream, flush=True)
        if self.shared:
            shared = ", ".join(n for n in self.pipeline.steps if n in self.shared)
            print(f"  steps the swept parameters do not reach run once, in v1: {shared}", file=self.stream, flush=True)

    def _finish(self, status: str, result: SweepResult) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        counts = {state: sum(v.state == state for v in self.variants) for state in ("done", "failed", "killed")}
        metrics = [Metric(f"variants_{state}", count, now, 0) for state, count in counts.items()]
        metrics.append(Metric("kit.total_s", round(time.monotonic() - self.started, 3), now, 0))
        tags = [RunTag("kit.status", status.lower())]
        if result.best is not None:
            metrics.append(Metric(f"best.{self.settings.metric_name}", result.best.metric, now, 0))
            tags += [RunTag("kit.sweep.best_run_id", result.best.run_id),
                     RunTag("kit.sweep.best_variant", str(result.best.number))]
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.run_id, status)

    # -- variants -------------------------------------------------------------------------------

    def _loop(self) -> None:
        self.started = time.monotonic()
        while True:
            self._start_ready()
            if not self.running:
                break
            try:
                thread = self.finished.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            thread.join()
            variant = self.running.pop(thread)
            self._ended(variant)

    def _start_ready(self) -> None:
        while len(self.running) < self.settings.jobs:
            if self.variants and not self._shared_ready():
                return  # v1 is still running the shared steps
            if self.shared_state is not None and not self.shared_state[0]:
                self._skip_rest()
                return
            proposal = self.chooser.ask()
            if proposal is None:
                return
            self._start(proposal)

    def _start(self, proposal) -> None:
        from kit.run.plan import load_plan

        plan = load_plan(self.pipeline.path, root=self.pipeline.root,
                         overrides=[*self.settings.base, layer(self.settings.axes, proposal.values)])
        values = {axis.name: plan.pipeline.steps[axis.step].parameters.get(axis.param, proposal.values[axis.name])
                  for axis in self.settings.axes}
        variant = VariantRun(proposal.number, values, state="running", plan=plan, proposal=proposal)
        self.variants.append(variant)
        overrides = {step: dict(v) for step, v in self.merged_base.items()}
        for axis in self.settings.axes:
            overrides.setdefault(axis.step, {})[axis.param] = values[axis.name]
        first = len(self.variants) == 1
        progress = _VariantProgress(variant, self.shared if first else set(), self._shared_done if first else _ignore,
                                    self.stream)
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        print(f"[{variant.label}] {shown}", file=self.stream, flush=True)
        thread = threading.Thread(target=self._thread, args=(variant, plan, overrides, progress),
                                  name=f"kit-variant-{variant.number}")
        self.running[thread] = variant
        thread.start()

    def _shared_ready(self) -> bool:
        """v1 has finished the shared steps and they are in the cache (the runner records an entry just
        after it reports the step done), or v1 ended."""
        if self.shared_state is None:
            return False
        if not self.shared_state[0] or self.variants[0].state != "running":
            return True
        if self.shared_recorded:
            return True
        from kit.run.cache_session import predicted_entries

        predicted = predicted_entries(self.variants[0].plan)
        cacheable = [n for n in self.shared if self.pipeline.steps[n].spec.cache]
        self.shared_recorded = all(predicted.get(n) is not None for n in cacheable)
        return self.shared_recorded

    def _shared_done(self, ok: bool, step: str | None = None) -> None:
        with self.lock:
            if self.shared_state is None:
                self.shared_state = (ok, step)

    def _thread(self, variant: VariantRun, plan, overrides, progress) -> None:
        try:
            with self.lock:
                self.interruptible.add(threading.get_ident())
            try:
                ended = run_variant(plan, overrides, sweep_run_id=self.run_id, number=variant.number,
                                    values=variant.values, jobs=1, progress=progress, executor=self.executor)
            finally:
                with self.lock:
                    self.interruptible.discard(threading.get_ident())
            for key in ("state", "run_id", "seconds", "error", "result"):
                setattr(variant, key, getattr(ended, key))
        except Interrupted as stop:
            variant.state, variant.error = "killed", str(stop)
        except BaseException as error:  # an interrupt landing outside the runner, or a bug: never lose the thread
            variant.state = "killed" if isinstance(error, (KeyboardInterrupt, _Terminated)) else "failed"
            variant.error = variant.error or f"{type(error).__name__}: {error}"
        finally:
            if self.shared_state is None and variant.number == 1:
                self._shared_done(variant.state == "done", None)
            self.finished.put(threading.current_thread())

    def _ended(self, variant: VariantRun) -> None:
        s = self.settings
        if variant.state == "done":
            variant.metric = read_metric(self.client, variant, s.metric_step, s.metric)
        try:
            record(self.client, variant, s.metric_name)
        finally:
            self.chooser.tell(variant.proposal, variant.metric if variant.state == "done" else None)
        detail = f"{s.metric_name}={variant.metric:.6g}" if variant.metric is not None else _first_line(variant.error)
        print(f"[{variant.label}] {variant.state} in {variant.seconds:.1f}s: {detail}", file=self.stream, flush=True)

    def _skip_rest(self) -> None:
        """v1 could not finish a shared step: every other variant would fail on it the same way."""
        _, step = self.shared_state
        reason = (f"not run: shared step {step!r} (the swept parameters do not reach it) did not finish in v1"
                  if step else "not run: v1 failed before the shared steps finished")
        while (proposal := self.chooser.ask()) is not None:
            variant = VariantRun(proposal.number, dict(proposal.values), state="not run", error=reason,
                                 proposal=proposal)
            self.variants.append(variant)
            self.chooser.tell(proposal, None)

    def _best(self) -> VariantRun | None:
        best = None
        for variant in self.variants:
            if variant.state == "done" and variant.metric is not None:
                if best is None or self.settings.better(variant.metric, best.metric):
                    best = variant
        return best

    # -- interrupts -----------------------------------------------------------------------------

    def _stop(self, kind: type, result: SweepResult, status: str = "KILLED") -> str:
        """Raise the interrupt in every running variant (its runner stops its kernels and marks its runs
        KILLED), wait for them, mark the sweep run KILLED."""
        with self.lock:
            for thread in self.running:
                if thread.ident in self.interruptible:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(kind))
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for thread in list(self.running):
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = [v.label for v in self.running.values()]
        for variant in self.running.values():
            if variant.state == "running":
                variant.state = "killed"
        if self.run_id is None:
            return "no sweep run was recorded yet"
        if self.client is not None:
            from mlflow.entities import RunTag

            for variant in self.running.values():
                if variant.run_id:
                    self.client.log_batch(variant.run_id, tags=[RunTag("kit.sweep.status", "killed")])
            self.client.set_tag(self.run_id, "kit.status", status.lower())
            self.client.set_terminated(self.run_id, status)
        if result.best is not None and result.best.run_id:  # interrupted while promoting
            from kit.run.tracking import PipelineTracker

            tracker = PipelineTracker(self.pipeline.root, self.pipeline.name)
            marked = _mark_interrupted_versions(tracker, result.best.run_id)
            if marked:
                return (f"sweep run {self.run_id} marked KILLED while promoting {result.best.label}; "
                        f"{', '.join(marked)} (see `kit models`)")
        running = f"variants {', '.join(stopped)} stopped (kernels stopped, runs marked KILLED)" if stopped else \
            "no variant was running"
        return f"{running}; sweep run {self.run_id} marked KILLED"

    # -- after the variants ---------------------------------------------------------------------

    def _report(self, result: SweepResult) -> None:
        from kit.run.sweep import table

        result.artifacts = table.log(self.client, self.run_id, result)
        table.show(result)

    def _promote(self, result: SweepResult) -> None:
        """The best variant through the gates and promotion, as `kit run` takes a finished run."""
        from kit.run.promotion import gatekeep
        from kit.run.tracking import PipelineTracker

        best = result.best
        tracker = PipelineTracker(self.pipeline.root, self.pipeline.name)
        tracker.run_id = best.run_id
        print(f"best: {best.label} ({self.settings.metric_name}={best.metric:.6g}), through the gates of "
              f"{self.pipeline.path.name}", flush=True)
        try:
            result.promotion = gatekeep(best.plan, best.result, tracker)
        except Exception:
            self._finish("FAILED", result)
            raise
        print(result.promotion.report())
        self.client.set_tag(self.run_id, "kit.gates", "passed" if result.promotion.passed else "failed")
        if not result.promotion.passed:
            # as `kit run` leaves a run whose gates failed: FAILED
            self.client.set_tag(best.run_id, "kit.status", "failed")
            self.client.set_terminated(best.run_id, "FAILED")
            self._finish("FAILED", result)
            raise GateFailure(f"the best variant {best.label} was refused by a gate (above); "
                              f"sweep run {self.run_id} marked FAILED")


def _ignore(*args) -> None:
    pass


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def sweep(plan, settings: Settings, stream=None, executor=None) -> SweepResult:
    return Sweep(plan, settings, stream, executor).run()
