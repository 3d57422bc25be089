"""DataFrame rows as the JSON rows a client sends to a model (edge bridge, cloud scoring server).

    request_rows(frame, ["age", "device"])  ->  [{"age": 31, "device": "ios"}, {"device": "web"}, ...]

One dict per row with only the named columns. Values become plain JSON types (numpy scalars
to Python numbers, timestamps and other objects to their text); a missing value (None, NaN,
pandas NA or NaT) is left out of its row, as a client leaves out a field it does not have --
the feature spec then applies its missing-value rule, the same in Python and JavaScript.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

_JSON_SCALARS = (str, bool, int, float)


def request_rows(frame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """`frame`'s rows (every column when `columns` is None) as JSON-safe request rows."""
    selected = frame if columns is None else frame[list(columns)]
    return [{name: _plain(value) for name, value in record.items() if not _missing(value)}
            for record in selected.to_dict(orient="records")]


def _missing(value: Any) -> bool:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.number, np.bool_)):  # not datetime64: its item() is an integer
        value = value.item()
    return value if isinstance(value, _JSON_SCALARS) else str(value)
