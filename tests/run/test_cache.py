"""The cache key and the local index, without kernels (the behaviour end to end: test_cache_e2e.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from kit.files import sha256_tree
from kit.run import cache
from kit.pipeline.notebooks import code_sources as code_cells
from kit.run.cache_key import step_key
from tests.conftest import write_notebook


class FakeStep:
    def __init__(self, notebook: Path, parameters: dict, outputs: dict):
        self.notebook, self.parameters, self.outputs = notebook, parameters, outputs


def key(step, **changes) -> str:
    parts = {"kernel": "kit", "inputs": {"x": "1" * 64}, "contracts": {}, "lock": "abc", "kit_version": "0.1.0"}
    return step_key(step, **{**parts, **changes})


def test_only_code_cells_count(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", "a = 1", "print(a)")
    step = FakeStep(path, {"a": 2}, {"out": "o.txt"})
    before = key(step)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("notes"))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 3
    nb.cells[1].metadata["collapsed"] = True
    nb.metadata["language_info"] = {"name": "python", "version": "3.11"}
    nbformat.write(nb, path)
    assert code_cells(path) == ["a = 1", "print(a)"]
    assert key(step) == before
    nb.cells[1].source = "print(a + 1)"
    nbformat.write(nb, path)
    assert key(step) != before


def test_every_other_part_changes_the_key(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", "a = 1", "print(a)")
    contract = tmp_path / "c.json"
    contract.write_text("{}")
    step = FakeStep(path, {"a": 2}, {"out": "o.txt"})
    base = key(step, contracts={"out": contract})
    changed = [key(FakeStep(path, {"a": 3}, {"out": "o.txt"}), contracts={"out": contract}),
               key(FakeStep(path, {"a": 2}, {"out": "p.txt"}), contracts={"out": contract}),
               key(step, contracts={"out": contract}, inputs={"x": "2" * 64}),
               key(step, contracts={"out": contract}, lock="def"),
               key(step, contracts={"out": contract}, kit_version="0.2.0"),
               key(step, contracts={"out": contract}, kernel="other")]
    contract.write_text('{"expectations": []}')
    changed.append(key(step, contracts={"out": contract}))
    assert len({base, *changed}) == len(changed) + 1


def test_folder_hash_is_content_and_relative_names(tmp_path):
    for root in (tmp_path / "one", tmp_path / "two"):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "x.bin").write_bytes(b"x")
        (root / "y.txt").write_text("y")
    assert sha256_tree(tmp_path / "one") == sha256_tree(tmp_path / "two")
    (tmp_path / "two" / "sub" / "x.bin").rename(tmp_path / "two" / "x.bin")
    assert sha256_tree(tmp_path / "one") != sha256_tree(tmp_path / "two")


ENTRY = cache.Entry(key="k" * 64, pipeline="p", step="s", run_id="r", artifact_uri="file:///nowhere",
                    tracking_uri="sqlite:///x", outputs={}, created=0.0)


def test_index_entries_are_whole_or_a_miss(tmp_path):
    index = cache.Index(tmp_path, "sqlite:///x")
    assert index.read(ENTRY.key) is None
    index.write(ENTRY)
    assert index.read(ENTRY.key) == ENTRY
    assert not [p for p in index.folder.iterdir() if p.suffix == ".tmp"]  # written through a rename
    assert cache.Index(tmp_path, "http://server").read(ENTRY.key) is None  # another store's entry
    index.path(ENTRY.key).write_text(json.dumps({"key": ENTRY.key}))
    with pytest.raises(cache.Miss, match="unreadable"):
        index.read(ENTRY.key)


def test_restore_refuses_changed_bytes(tmp_path):
    artifacts = tmp_path / "artifacts"
    (artifacts / "outputs" / "out").mkdir(parents=True)
    (artifacts / "outputs" / "out" / "o.txt").write_text("good")
    good = {"out": {"name": "o.txt", "kind": "file", "sha256": sha256_tree(artifacts / "outputs" / "out" / "o.txt")}}
    entry = replace(ENTRY, artifact_uri=artifacts.as_uri(), outputs=good)
    target = tmp_path / "ws" / "o.txt"
    assert cache.restore(entry, {"out": target}) == {"out": good["out"]["sha256"]}
    assert target.read_text() == "good"
    (artifacts / "outputs" / "out" / "o.txt").write_text("bad")
    with pytest.raises(cache.Miss, match="does not match its recorded hash"):
        cache.restore(entry, {"out": target})
    assert not target.exists()  # nothing wrong left behind
    (artifacts / "outputs" / "out" / "o.txt").unlink()
    with pytest.raises(cache.Miss, match="missing from the store"):
        cache.restore(entry, {"out": target})


@pytest.mark.parametrize("argv, force, pipeline", [
    (["run", "--force", "pipelines/x.yaml"], ["*"], "pipelines/x.yaml"),  # before the file: every step
    (["run", "pipelines/x.yaml", "--force"], ["*"], "pipelines/x.yaml"),
    (["run", "pipelines/x.yaml", "--force", "train"], ["train"], "pipelines/x.yaml"),
    (["run", "--force", "train", "p.yml", "--force", "evaluate"], ["train", "evaluate"], "p.yml"),
])
def test_force_may_come_before_or_after_the_pipeline_file(argv, force, pipeline):
    from kit.cli import _force_before_pipeline, build_parser

    args = build_parser(load_targets=[]).parse_args(_force_before_pipeline(argv))
    assert args.force == force and str(args.pipeline) == pipeline
