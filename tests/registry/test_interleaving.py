"""The move protocol under arbitrary interleavings, on a small in-memory fake of the MLflow
client: each call is atomic (as one database transaction), and a random pause between calls
lets the movers overtake each other at every step, as processes on different machines do."""

from __future__ import annotations

import random
import re
import threading
import time
from types import SimpleNamespace

import pytest

from kit.registry import Registry, versions
from kit.registry.errors import HolderChanged, RegistryError
from kit.registry.ordering import ANY


class Fake:
    """The calls the registry makes, over dicts. Version numbers are max + 1, like the SQL store."""

    def __init__(self, pause: float = 0.0):
        self.tracking_uri = "fake://"
        self.models: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.pause = pause
        self.rng = random.Random(0)

    def _call(self, work):
        time.sleep(self.rng.random() * self.pause)
        with self.lock:
            return work()

    def create_registered_model(self, name, tags=None, description=""):
        def work():
            if name in self.models:
                from mlflow.exceptions import MlflowException
                from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
                raise MlflowException("exists", error_code=RESOURCE_ALREADY_EXISTS)
            self.models[name] = {"tags": dict(tags or {}), "versions": {}, "aliases": {}}
        return self._call(work)

    def create_model_version(self, name, source, run_id=None, tags=None, description="", await_creation_for=None):
        def work():
            found = self.models[name]["versions"]
            number = max(found, default=0) + 1
            found[number] = SimpleNamespace(version=str(number), tags=dict(tags or {}), run_id=run_id, source=source,
                                            creation_timestamp=number)
            return found[number]
        return self._call(work)

    def get_model_version(self, name, version):
        return self._call(lambda: self.models[name]["versions"][int(version)])

    def set_model_version_tag(self, name, version, key, value):
        return self._call(lambda: self.models[name]["versions"][int(version)].tags.__setitem__(key, value))

    def search_model_versions(self, query, max_results=None, page_token=None):
        name = re.search(r"name = '([^']*)'", query).group(1)
        wanted = dict(re.findall(r"tags\.`([^`]*)` = '([^']*)'", query))

        return Page(self._call(lambda: [v for v in self.models.get(name, {"versions": {}})["versions"].values()
                                        if all(v.tags.get(k) == w for k, w in wanted.items())]))

    def get_registered_model(self, name):
        return self._call(lambda: SimpleNamespace(aliases=dict(self.models[name]["aliases"])))

    def set_registered_model_alias(self, name, alias, version):
        return self._call(lambda: self.models[name]["aliases"].__setitem__(alias, str(version)))

    def delete_registered_model_alias(self, name, alias):
        return self._call(lambda: self.models[name]["aliases"].pop(alias, None))

    # the audit runs: records for people, not part of the protocol
    def get_experiment_by_name(self, name):
        return SimpleNamespace(experiment_id="1", lifecycle_stage="active")

    def search_runs(self, *args, **kwargs):
        return []

    def create_run(self, experiment_id, tags=None):
        return SimpleNamespace(info=SimpleNamespace(run_id=f"run-{time.monotonic_ns()}"))

    def log_dict(self, *args):
        pass

    def set_tag(self, *args):
        pass

    def set_terminated(self, *args):
        pass


class Page(list):
    token = None


@pytest.fixture
def fake(tmp_path):
    fake = Fake()
    registry = Registry(tmp_path, fake)
    for number in range(1, 7):
        versions.register(fake, "m", "x", None, {"kit.gates": "passed"})
    assert [v.version for v in versions.all_versions(fake, "m")] == [str(n) for n in range(1, 7)]
    registry.promote("m", "1", "champion")
    fake.pause = 0.004
    return fake, registry


def mover(registry, seed: int, moves: int, done: list, killed_after: int | None = None):
    rng = random.Random(seed)
    for index in range(moves):
        if killed_after is not None and index == killed_after:
            # died between its request and its alias write: only the request is left
            registry.audit.append("m", "champion", "promote", rng.choice("23456"), ANY, "killed")
            return
        try:
            if rng.random() < 0.3:
                done.append(registry.rollback("m", "champion"))
            else:
                expected = versions.holder(registry.client, "m", "champion") if rng.random() < 0.5 else None
                kwargs = {"expected_holder": expected} if expected else {}
                done.append(registry.promote("m", rng.choice("123456"), "champion", **kwargs))
        except (HolderChanged, RegistryError):
            pass


@pytest.mark.parametrize("seed", range(4))
def test_movers_that_overtake_each_other_leave_a_consistent_log_and_alias(fake, seed):
    client, registry = fake
    done: list = []
    killed = seed % 2 == 1
    threads = [threading.Thread(target=mover, args=(Registry(registry.root, client), seed * 10 + n, 6, done,
                                                    2 if killed and n == 0 else None))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    client.pause = 0
    log = registry.audit.read("m", "champion")
    events = log.events()
    assert {e.attempt for e in done} <= {e.attempt for e in events}  # no move reported done is lost
    for before, after in zip(events, events[1:]):  # each move starts from the holder before it
        assert after.from_version == before.to_version
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(events) >= 4
    alias = versions.holder(client, "m", "champion")
    if killed:
        registry.repair("m", "champion")  # what the next move or `kit models` does
        alias = versions.holder(client, "m", "champion")
    assert alias == log.holder


def test_a_mover_overtaken_before_its_alias_write_writes_again(fake):
    """P appends and reads the log (head: its v2), then stalls; Q appends v3 after it and moves the
    alias; P's late write of v2 would leave the alias behind the head, so P re-reads and writes v3."""
    client, registry = fake
    client.pause = 0
    stalled, overtaken = threading.Event(), threading.Event()
    write = client.set_registered_model_alias

    def stalling_write(name, alias, version):
        if threading.current_thread().name == "P" and not stalled.is_set():
            stalled.set()
            assert overtaken.wait(30)
        write(name, alias, version)

    client.set_registered_model_alias = stalling_write
    results = {}
    p = threading.Thread(name="P", target=lambda: results.update(p=registry.promote("m", "2", "champion")))
    p.start()
    assert stalled.wait(30)
    results["q"] = Registry(registry.root, client).promote("m", "3", "champion")
    overtaken.set()
    p.join(30)
    assert (results["p"].from_version, results["p"].to_version) == ("1", "2")
    assert (results["q"].from_version, results["q"].to_version) == ("2", "3")
    assert versions.holder(client, "m", "champion") == "3" == registry.audit.read("m", "champion").holder
