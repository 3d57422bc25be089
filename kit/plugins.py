"""A table of named plug-ins (gate types, metric functions, scorers): the kit's own, those
registered at start-up with `register`, and those installed packages declare under an entry point
group, as papermill does for its engines.

One implementation for every such table because the details matter: entry points are loaded once,
lazily (importing a target costs seconds), installed plug-ins win a name clash and are asked first,
and the table is built whole under a lock before anyone sees it. Gates score a champion and a
candidate in two threads; an unlocked lazy table once showed one thread a half-filled dict, and the
edge champion went 'unknown' under load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Plugins(Generic[T]):
    def __init__(self, group: str, name_of: Callable[[T], str], make: Callable[[Any], T] = lambda loaded: loaded):
        self.group = group
        self._name_of = name_of
        self._make = make  # what an entry point loads -> the table's value (a scorer class -> an instance)
        self._registered: dict[str, T] = {}
        self._table: dict[str, T] | None = None
        self._lock = threading.Lock()

    def register(self, loaded: Any) -> Any:
        """Add one (usable as a class decorator: returns what it was given)."""
        item = self._make(loaded)
        with self._lock:
            self._registered[self._name_of(item)] = item
            self._table = None
        return loaded

    def known(self) -> dict[str, T]:
        with self._lock:
            if self._table is None:
                installed = {}
                for entry in entry_points(group=self.group):
                    item = self._make(entry.load())
                    installed[self._name_of(item)] = item
                self._table = {**installed, **{k: v for k, v in self._registered.items() if k not in installed}}
            return self._table
