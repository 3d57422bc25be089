"""Unit tests of the cluster path's checks (no scheduler: the workers as the scheduler describes them)."""

from __future__ import annotations

import pytest

from kit.errors import SpecError
from kit.pipeline.schema import PipelineSpec
from kit.run.cluster import parse_resources
from kit.run.remote import check_resources

WORKERS = {"tcp://127.0.0.1:1": {"name": "worker-1", "nthreads": 1, "resources": {"cpus": 1, "memory": 2**33}},
           "tcp://127.0.0.1:2": {"name": "worker-2", "nthreads": 1,
                                 "resources": {"cpus": 4, "memory": 2**32, "gpu": 1}}}


class Pipeline:
    def __init__(self, *resources: dict):
        self.spec = PipelineSpec(name="p", model="m", steps=[
            {"name": f"s{i}", "notebook": "n.ipynb", "resources": r} for i, r in enumerate(resources)])

    @staticmethod
    def where(*location) -> str:
        return f"p.yaml:{'.'.join(map(str, location))}"


def test_a_step_runs_where_one_worker_offers_everything_it_needs():
    check_resources(Pipeline({"cpus": 2, "gpu": 1}, {"memory": "8GiB"}, {}), WORKERS, "tcp://s:8786")


def test_needs_met_only_by_different_workers_together_are_refused_naming_what_is_missing():
    with pytest.raises(SpecError) as refused:
        check_resources(Pipeline({}, {"memory": "8GiB", "gpu": 1}), WORKERS, "tcp://s:8786")
    message = str(refused.value)
    assert message.startswith("p.yaml:steps.1.resources: step 's1' needs ")
    assert "no worker of tcp://s:8786 offers that" in message and "worker-2: cpus=4, memory=4.00 GiB, gpu=1" in message


def test_no_workers_at_all_is_refused():
    with pytest.raises(SpecError, match="the scheduler has no workers"):
        check_resources(Pipeline({}), {}, "tcp://s:8786")


def test_resources_on_the_command_line():
    assert parse_resources("gpu=1, fpga=0.5") == {"gpu": 1.0, "fpga": 0.5}
    with pytest.raises(SpecError, match="'gpu' is not NAME=NUMBER"):
        parse_resources("gpu")


def test_a_step_goes_to_the_worker_holding_its_inputs_only_while_that_worker_has_a_free_thread():
    from kit.run.remote import Holdings

    holdings = Holdings({"w1": 1, "w2": 1})
    holdings.add("w1", ["features", "labels"])
    holdings.add("w2", ["labels"])
    assert holdings.holder(["features", "labels"]) == "w1"
    assert holdings.holder(["labels", "other"]) is None  # nobody holds both: the bytes are sent
    holdings.started("w1")  # a sweep's first variant runs there: the second goes anywhere, with its inputs
    assert holdings.holder(["features"]) is None and holdings.holder(["labels"]) == "w2"
    holdings.ended("w1")
    holdings.forget("w1")  # lost: what it held is gone
    assert holdings.holder(["features"]) is None


def test_the_workers_store_drops_its_least_recently_used_entries_past_its_size(tmp_path):
    import os

    from kit.run.remote_task import _prune

    for age, name in enumerate(["newest", "middle", "oldest"]):
        (tmp_path / name).write_bytes(b"x" * 100)
        os.utime(tmp_path / name, (1000 - age, 1000 - age))
    _prune(tmp_path, limit=250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "newest"]


def test_a_fresh_workers_empty_store_is_nothing_to_prune(tmp_path):
    """A worker's first step had no outputs: no store folder yet (its pruning once failed the step)."""
    from kit.run.remote_task import _prune

    _prune(tmp_path / "kit-cas", limit=0)
    assert not (tmp_path / "kit-cas").exists()
