"""Keep Python's cyclic garbage collector off the serving path.

A process that imported mlflow, pandas and a model holds ~300,000 tracked objects. Every full
(generation 2) collection walked all of them: 100-250 ms measured in the front and in each
worker, during which every request waited (the 1-connection p99 outliers of issue 14: a
p99 of 170 ms on a 2.9 ms median). Freezing what start-up made moves it to the permanent
generation: later collections walk only objects made while serving, which is what can
hold cycles worth collecting. Nothing is leaked: frozen objects were alive anyway.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then exempt every object alive now from later collections. Call it once
    loading is done (a worker's model, the front's first version), not per request."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Give frozen objects back to the GC: a front serving inside a longer process (a gate in
    `kit run`) must not leave that process's cycles uncollectable after it stops."""
    gc.unfreeze()
