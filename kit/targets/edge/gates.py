"""Edge gates, measured in a real Node process running the bundle: parity with the Python
model, and single-row latency. Registered through the `kit.gates` entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from kit.gates import Gate, GateContext, GateResult, StepOutput
from kit.native import stderr_to_file
from kit.stats import DEFINITION


class _EdgeGate(Gate):
    bundle: StepOutput = Field(description="the step output holding the edge bundle folder")
    rows: StepOutput = Field(description="a CSV or Parquet table of evaluation rows with the raw input columns")
    max_rows: int = Field(default=5000, gt=0)

    @property
    def step(self) -> str:  # so the plan checks the step exists
        return self.bundle.step

    def _inputs(self, context: GateContext):
        from kit.tables import read_table
        from kit.features import load_spec
        from kit.features.rows import request_rows
        from kit.targets.edge import read_bundle

        bundle, rows_path = self.bundle.path(context), self.rows.path(context)
        manifest = read_bundle(bundle)
        spec = load_spec(bundle / "feature_spec.json")
        frame = read_table(rows_path).head(self.max_rows)
        return bundle, manifest, spec, frame, request_rows(frame, spec.input_names)


class EdgeParity(_EdgeGate):
    """The bundle in Node agrees with the Python model on the evaluation rows."""

    type = "edge_parity"
    reuse = "pure"
    reference: StepOutput = Field(description="the Python model: a SavedModel folder (tfjs-graph) or booster file")
    max_abs_diff: float = Field(default=1e-5, ge=0)
    min_agreement: float = Field(default=1.0, ge=0, le=1)

    def evaluate(self, context: GateContext) -> GateResult:
        from kit.targets.edge.node import bridge

        bundle, manifest, spec, frame, rows = self._inputs(context)
        expected = python_outputs(manifest.kind, self.reference.path(context), spec.transform(frame[spec.input_names]))
        answered = bridge(bundle, rows)
        failed_rows = [i for i, o in enumerate(answered["outputs"]) if o is None]
        threshold = f"max |diff| <= {self.max_abs_diff:g}, agreement >= {self.min_agreement:.0%}"
        if failed_rows:
            first = answered["predictions"][failed_rows[0]]
            return self.result(False, None, threshold, f"the edge runtime refused {len(failed_rows)} of {len(rows)} rows; "
                                                       f"row {failed_rows[0]}: {first.get('error')}")
        got = np.asarray(answered["outputs"], dtype=np.float64).reshape(expected.shape)
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        agreement = float(np.mean(_classes(got) == _classes(expected))) if len(expected) else 1.0
        passed = diff <= self.max_abs_diff and agreement >= self.min_agreement
        detail = (f"{len(rows)} rows: max |Node - Python| = {diff:.3g}, same class on {agreement:.2%}"
                  + ("" if passed else f" (allowed {self.max_abs_diff:g} and {self.min_agreement:.0%})"))
        return self.result(passed, diff, threshold, detail)


class EdgeLatency(_EdgeGate):
    """Single-row prediction p99 through the handler, in Node, within the budget.

    The figure is the median of `rounds` p99s, each from a fresh Node process: a slow model is
    slow in every round, while another process stealing a core spoils one round, not three.
    """

    type = "edge_latency"
    reuse = "measured"
    p99_ms: float = Field(default=5.0, gt=0)
    calls: int = Field(default=2000, gt=0)
    warmup: int = Field(default=3000, ge=0, description="calls before measuring (V8 optimizes over the first thousands)")
    rounds: int = Field(default=3, ge=1)

    def evaluate(self, context: GateContext) -> GateResult:
        from kit.targets.edge.node import bridge

        bundle, _, _, _, rows = self._inputs(context)
        rounds = [bridge(bundle, rows[:200], bench=self.calls, warmup=self.warmup)["latency_ms"] for _ in range(self.rounds)]
        p99 = float(np.median([r["p99"] for r in rounds]))
        p50 = float(np.median([r["p50"] for r in rounds]))
        passed = p99 <= self.p99_ms
        each = ", ".join(f"{r['p99']:.3f}" for r in rounds)
        return self.result(passed, p99, f"p99 <= {self.p99_ms:g} ms",
                           f"{self.rounds} rounds of {self.calls} single-row calls in Node after {self.warmup} warm-up "
                           f"calls: p50 {p50:.3f} ms, p99 {p99:.3f} ms (median of {each}; p50, p99: {DEFINITION})")


def python_outputs(kind: str, reference: Path | None, features: np.ndarray) -> np.ndarray:
    """What the Python model outputs for these feature vectors (the parity baseline)."""
    if kind == "tfjs-graph":
        from kit.targets.edge import python_predict

        with stderr_to_file():
            return np.asarray(python_predict(reference, features.astype(np.float32)), dtype=np.float64)
    if kind == "lightgbm-json":
        # reference: the booster's text model (booster.save_model) -- or its dump_model() JSON,
        # which is rebuilt into a text model -- evaluated by LightGBM itself, in float64, NaN = missing.
        from kit.targets.edge.lightgbm import lightgbm_predict

        if reference is None:
            raise ValueError("the edge_parity gate needs `reference`: the LightGBM model file (booster.save_model)")
        return lightgbm_predict(reference, np.asarray(features, dtype=np.float64))
    raise ValueError(f"no Python reference for bundle kind {kind!r}")


def _classes(outputs: np.ndarray) -> np.ndarray:
    return (outputs[:, 0] > 0.5).astype(int) if outputs.shape[1] == 1 else outputs.argmax(axis=1)
