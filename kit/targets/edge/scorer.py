"""Re-scoring an edge bundle where it runs: in a real Node process through the edge runtime,
with the bundle's own feature spec. Registered through the `kit.scorers` entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.gates.scorers import ModelFiles, Predictions, Scorer, ScoringError


class EdgeBundleScorer(Scorer):
    kind = "edge-bundle"

    def matches(self, path: Path) -> bool:
        return path.is_dir() and (path / "manifest.json").is_file() and (path / "feature_spec.json").is_file()

    def predict(self, model: ModelFiles, rows) -> Predictions:
        from kit.features import load_spec
        from kit.features.rows import request_rows
        from kit.targets.edge import read_bundle
        from kit.targets.edge.node import bridge

        manifest = read_bundle(model.path)
        spec = load_spec(model.path / "feature_spec.json")
        answered = bridge(model.path, request_rows(rows, spec.input_names), timeout=1800)
        refused = [i for i, o in enumerate(answered["outputs"]) if o is None]
        if refused:
            first = answered["predictions"][refused[0]]
            raise ScoringError(f"the edge runtime refused {len(refused)} of {len(rows)} evaluation rows; "
                               f"row {refused[0]}: {first.get('error')}")
        values = np.asarray(answered["outputs"], dtype=np.float64)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        return Predictions(values, list(manifest.labels))
