"""Where a long command is, so an interrupt can say where it stopped, and a test seam that
makes the process signal itself at a named phase.

Set `KIT_TEST_SIGNAL_AT=PHASE[:SIGINT|SIGTERM]` (default SIGINT) and the process sends
itself that signal the first time it reaches `checkpoint(PHASE)`. Nothing else reads it.
"""

from __future__ import annotations

import os
import signal
import threading
import time

ENV = "KIT_TEST_SIGNAL_AT"

# phase -> what the one-line interrupt message says
PHASES = {
    "start": "before the first step",
    "step": "while a step's notebook was running",
    "contract": "while a data contract was being checked",
    "gate": "while a gate was running (Node or a scoring server)",
    "register": "while registering the model version",
    "promote": "after registering the model version, before moving the alias",
    "audit": "while writing the audit log",
}

_current = {"phase": "", "detail": ""}
_fired: set[str] = set()


def mark(phase: str, detail: str = "") -> None:
    """Record that the command reached `phase`, without the test seam."""
    _current["phase"], _current["detail"] = phase, detail


def checkpoint(phase: str, detail: str | None = None) -> None:
    """Record that the command reached `phase` (keeping its detail if `detail` is None),
    and send the test signal if KIT_TEST_SIGNAL_AT names this phase."""
    if detail is not None or _current["phase"] != phase:
        mark(phase, detail or "")
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, signal_name = wanted.partition(":")
    if name == phase and phase not in _fired:
        _fired.add(phase)
        os.kill(os.getpid(), getattr(signal, signal_name or "SIGINT", signal.SIGINT))
        if threading.current_thread() is not threading.main_thread():
            time.sleep(1)  # the main thread handles the signal; let it act before this thread goes on


def where() -> str:
    """Where the command is, in words: 'during the gates (edge_parity)'."""
    words = PHASES.get(_current["phase"], _current["phase"])
    if not words:
        return ""
    return f"{words} ({_current['detail']})" if _current["detail"] else words


def reset(phase: str = "") -> None:
    """A new command (or a new run in this process) starts here; the test signal can fire again."""
    _current["phase"], _current["detail"] = phase, ""
    _fired.clear()
