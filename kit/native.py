"""Native libraries' own output kept off the user's terminal.

TensorFlow's C++ start-up (CUDA probes, XLA registrations) writes to the process's stderr (file
descriptor 2) before any Python logging exists. Around a call that loads such a library, fd 2
goes to a temporary file, shown only if the call fails. fd 2 belongs to the whole process and
gates score two models on two threads at once, so the redirection is shared: the first caller
in redirects, the last one out restores.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

_lock = threading.Lock()
_state = {"depth": 0, "saved": -1, "sink": None}


@contextlib.contextmanager
def stderr_to_file():
    """Within: the process's fd 2 writes to a temporary file; if the body raises, what was
    written there is copied to the real stderr before the exception goes on."""
    with _lock:
        if _state["depth"] == 0:
            sys.stderr.flush()
            _state["saved"] = os.dup(2)
            _state["sink"] = tempfile.TemporaryFile(mode="w+b")
            os.dup2(_state["sink"].fileno(), 2)
        _state["depth"] += 1
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        with _lock:
            if failed:
                sink = _state["sink"]
                sink.flush()
                sink.seek(0)
                os.write(_state["saved"], sink.read())
                sink.seek(0, os.SEEK_END)
            _state["depth"] -= 1
            if _state["depth"] == 0:
                os.dup2(_state["saved"], 2)
                os.close(_state["saved"])
                _state["sink"].close()
                _state["saved"], _state["sink"] = -1, None
