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
        from kit.features.rows import request_columns
        from kit.targets.edge import read_bundle
        from kit.targets.edge.node import score_columns

        manifest = read_bundle(model.path)
        spec = load_spec(model.path / "feature_spec.json")
        answered = score_columns(model.path, request_columns(rows, spec.input_names))
        refused = answered["refused"]
        if refused:
            raise ScoringError(f"the edge runtime refused {refused['count']} of {len(rows)} evaluation rows; "
                               f"row {refused['row']}: {refused['error']}")
        values = np.asarray(answered["outputs"], dtype=np.float64).reshape(len(rows), answered["output_width"] or 1)
        if values.shape[1] == 1:
            values = values[:, 0]
        return Predictions(values, list(manifest.labels))
