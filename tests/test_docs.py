"""`make docs`: the reference docs (MkDocs + mkdocstrings) build without a single warning, and the
generated pages hold what the code says (public API from docstrings, formats from schemas)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_reference_docs_build_strictly_and_cover_the_api_and_the_formats(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr

    def page(name: str) -> str:
        return (site / name / "index.html").read_text(encoding="utf-8")

    import kit.cloud
    import kit.edge
    import kit.features

    for module, name in ((kit, "api/kit"), (kit.features, "api/features"), (kit.edge, "api/edge"),
                         (kit.cloud, "api/cloud")):
        html = page(name)
        missing = [n for n in module.__all__ if f'id="{module.__name__}.{n}"' not in html]
        assert not missing, f"{name}: no entry for {missing}"
    pipeline = page("formats/pipeline")
    from kit.pipeline.schema import PipelineSpec, StepSpec

    for key in [*PipelineSpec.model_fields, *StepSpec.model_fields]:  # every key, from the schema itself
        assert f"<code>{key}</code>" in pipeline, key
    assert "metric_threshold" in pipeline and "edge_parity" in pipeline  # the gates' own schemas
    manifest = page("formats/edge-bundle")
    from kit.targets.edge.bundle import Manifest

    assert all(f"<code>{key}</code>" in manifest for key in Manifest.model_fields)
    assert "kit-feature-spec/1" in page("formats/feature-spec") and "expectations" in page("formats/contract")
