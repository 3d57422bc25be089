"""A step's cache key: everything that decides what its execution produces, hashed.

In the key: the notebook's code cells (not markdown, outputs, execution counts or metadata),
the step's parameters after coercion, the content of its upstream inputs, the names of its
outputs, its contract files, the kernel, the environment's lock hash and the kit version.
Not in it: paths (every run has its own workspace) and the timeout.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kit.files import sha256_file
from kit.pipeline import notebooks

# Bump when what goes into a key changes, so old entries stop matching.
KEY_VERSION = 1


def step_key(step, *, kernel: str, inputs: dict[str, str], contracts: dict[str, Path], lock: str | None,
             kit_version: str) -> str:
    """Hex SHA-256 of the step's key parts. `inputs`: input parameter -> content hash of the
    upstream file or folder; `contracts`: parameter -> contract file."""
    parts: dict[str, Any] = {
        "key_version": KEY_VERSION,
        "kit": kit_version,
        "lock": lock,
        "kernel": kernel,
        "code": notebooks.code_sources(step.notebook),  # .ipynb or Jupytext .py alike
        "parameters": step.parameters,
        "inputs": inputs,
        "outputs": step.outputs,
        "contracts": {param: sha256_file(path) for param, path in sorted(contracts.items())},
    }
    text = json.dumps(parts, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
