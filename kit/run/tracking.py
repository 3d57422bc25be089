"""MLflow bookkeeping for a pipeline run: one parent run, one nested run per step.

The runner talks to MLflow through an MlflowClient with explicit run ids (no fluent,
thread-local active-run state), so steps running in parallel never mix their runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from kit import store
from kit.run import provenance

STATUS_TAG = "kit.status"

# Tags for the pipeline run that `start` creates in this context (thread): `kit sweep` nests each
# variant's run under its sweep run this way (mlflow.parentRunId), calling the runner unchanged.
_EXTRA_RUN_TAGS: ContextVar[dict[str, str]] = ContextVar("kit_extra_run_tags", default={})


@contextmanager
def pipeline_run_tags(tags: dict[str, str]):
    """Within the block, a pipeline run started in this thread also gets `tags` (they win)."""
    token = _EXTRA_RUN_TAGS.set({**_EXTRA_RUN_TAGS.get(), **tags})
    try:
        yield
    finally:
        _EXTRA_RUN_TAGS.reset(token)


class PipelineTracker:
    def __init__(self, root: Path, pipeline_name: str):
        self.root = root
        self.client = store.client(root)
        self.experiment_id = store.ensure_experiment(self.client, root, pipeline_name)
        self.run_id: str | None = None

    @property
    def tracking_uri(self) -> str:
        return store.tracking_uri(self.root)

    def start(self, pipeline, overrides: dict[str, Any], plan=None) -> str:
        tags = {
            "mlflow.runName": pipeline.name,
            "kit.pipeline": pipeline.name,
            "kit.model": pipeline.spec.model,
            "kit.kind": "pipeline",
            **provenance.tags(self.root),
            **_EXTRA_RUN_TAGS.get(),
        }
        run = self.client.create_run(self.experiment_id, tags=tags)
        self.run_id = run.info.run_id
        self.client.log_text(self.run_id, pipeline.text, f"pipeline/{pipeline.path.name}")
        if overrides:
            self.client.log_dict(self.run_id, overrides, "pipeline/overrides.json")
        if plan is not None:
            from kit.run import snapshot

            snapshot.log_sources(self.client, self.run_id, plan, self.root)
        return self.run_id

    def log_produced(self, result) -> None:
        """What the steps made that belongs in the snapshot (feature specs)."""
        from kit.run import snapshot

        snapshot.log_produced(self.client, self.run_id, result, self.root)

    def start_step(self, step, injected: dict[str, Any]) -> str:
        from mlflow.entities import Param

        tags = {
            "mlflow.parentRunId": self.run_id,
            "mlflow.runName": step.name,
            "kit.step": step.name,
            "kit.notebook": str(step.spec.notebook),
            "kit.kind": "step",
            STATUS_TAG: "running",
        }
        run = self.client.create_run(self.experiment_id, tags=tags)
        params = [Param(k, _param_value(v)) for k, v in injected.items()]
        if params:
            self.client.log_batch(run.info.run_id, params=params)
        return run.info.run_id

    def log_contract(self, run_id: str, direction: str, param: str, check) -> None:
        """The contract's HTML report and JSON result on the step's run, and a pass/fail tag."""
        import tempfile

        from kit.contracts.report import write_html, write_json

        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder) / f"{direction}-{param}"
            for written in (write_html(check, base.with_suffix(".html")), write_json(check, base.with_suffix(".json"))):
                self.client.log_artifact(run_id, str(written), "contracts")
        self.client.set_tag(run_id, f"kit.contract.{param}", "passed" if check.success else "failed")
        if check.data_sha256:
            self.client.set_tag(run_id, f"kit.data.{param}.sha256", check.data_sha256)

    def finish_step(self, run_id: str, status: str, duration: float, notebook: Path | None,
                    outputs: dict[str, Path], error: str | None = None, contract_failed: bool = False) -> None:
        """Log what the step left behind, then close its run. `status` is an MLflow status."""
        import time

        from mlflow.entities import Metric, RunTag
        if notebook is not None and notebook.is_file():
            self.client.log_artifact(run_id, str(notebook), "notebook")
            kernel_log = notebook.parent / "kernel.log"
            if kernel_log.is_file() and kernel_log.stat().st_size:
                self.client.log_artifact(run_id, str(kernel_log), "notebook")
        for param, path in outputs.items():
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), f"outputs/{param}")
            elif path.is_file():
                self.client.log_artifact(run_id, str(path), f"outputs/{param}")
        # One request for the figure and the tags (against a server, each call is a round trip).
        tags = [RunTag(STATUS_TAG, "contract-failed" if contract_failed else status.lower())]
        if error:
            tags.append(RunTag("kit.error", error[:4500]))
        self.client.log_batch(run_id, metrics=[Metric("duration_s", round(duration, 3), int(time.time() * 1000), 0)],
                              tags=tags)
        self.client.set_terminated(run_id, status)

    def log_page(self, run_id: str, html: Path) -> None:
        """The executed notebook's HTML page (kit.run.render), beside the notebook."""
        self.client.log_artifact(run_id, str(html), "notebook")

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.client.log_dict(self.run_id, summary, "pipeline/summary.json")
        self.client.set_tag(self.run_id, STATUS_TAG, status.lower())
        self.client.set_terminated(self.run_id, status)


def _param_value(value: Any) -> str:
    # str(), as mlflow.log_param does, so a notebook logging the same value again agrees.
    return str(value)[:6000]
