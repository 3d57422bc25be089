"""The plug-in tables behind gate types, metric functions and scorers."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kit import plugins
from kit.plugins import Plugins


class SlowEntry:
    """An installed plug-in whose import takes a while, as importing a target does."""

    def __init__(self, value):
        self.value = value

    def load(self):
        time.sleep(0.2)
        return self.value


def table(monkeypatch, installed):
    monkeypatch.setattr(plugins, "entry_points", lambda group: [SlowEntry(v) for v in installed])
    found = Plugins("kit.test", name_of=lambda item: item[0])
    found.register(("builtin", 1))
    return found


def test_threads_asking_at_once_all_see_the_whole_table(monkeypatch):
    found = table(monkeypatch, [("installed", 2)])
    start = threading.Barrier(4)

    def ask():
        start.wait()
        return dict(found.known())

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(lambda _: ask(), range(4)))
    assert all(s == {"installed": ("installed", 2), "builtin": ("builtin", 1)} for s in seen), seen


def test_installed_plugins_win_a_name_clash_and_come_first(monkeypatch):
    found = table(monkeypatch, [("builtin", 9), ("other", 3)])
    assert list(found.known().items()) == [("builtin", ("builtin", 9)), ("other", ("other", 3))]


def test_registering_later_is_seen_by_the_next_lookup(monkeypatch):
    found = table(monkeypatch, [])
    assert list(found.known()) == ["builtin"]
    found.register(("late", 4))
    assert found.known()["late"] == ("late", 4)


def test_the_three_kit_tables_know_their_builtins():
    from kit.gates import metrics, registry, scorers

    assert {"metric_threshold", "no_regression", "artifact_size"} <= set(registry.known())
    assert {"accuracy", "log_loss", "roc_auc", "rmse", "mae"} <= set(metrics.known())
    kinds = list(scorers.known())
    assert kinds[0] == "edge-bundle" and {"mlflow-model", "savedmodel", "keras", "lightgbm"} <= set(kinds)
