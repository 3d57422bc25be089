"""Ctrl-C and SIGTERM at every phase of `kit run`, through the KIT_TEST_SIGNAL_AT test seam:
exit 130 / 143, one line saying where it stopped, no traceback, no process left behind,
runs KILLED, and a registry that `kit models` shows truthfully and the next run repairs.

One cheap pipeline: one step (a LightGBM model on 200 rows, exported as a JSON-trees edge
bundle) with an output contract, a metric gate and the edge parity gate (which runs Node),
promoted to `champion`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import ctrl_c_as_a_terminal_sends_it
from conftest import tiny_edge_pipeline as tiny
from kit.checkpoint import PHASES

pytestmark = pytest.mark.e2e

def marked_processes(mark: str) -> list[str]:
    """Processes still alive whose environment carries `mark` (every child of the run inherits it)."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark.encode() in (proc / "environ").read_bytes():
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                alive.append(f"{proc.name}: {command[:120]}")
        except OSError:
            continue
    return alive


def run_with_signal(project, path: Path, phase: str, signame: str):
    mark = f"kit-interrupt-test-{uuid.uuid4()}"
    env = {**project.env, "KIT_TEST_SIGNAL_AT": f"{phase}:{signame}", "KIT_TEST_MARK": mark}
    done = subprocess.run([sys.executable, "-m", "kit.cli", "run", str(path)], cwd=project.root, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=ctrl_c_as_a_terminal_sends_it)
    deadline = time.monotonic() + 10  # a SIGKILLed kernel may take a moment to be reaped
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    return done, marked_processes(mark)


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("phase", list(PHASES))
def test_interrupt_at_every_phase(project, capsys, phase, signame, code):
    path = tiny(project)
    done, left = run_with_signal(project, path, phase, signame)

    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    message = [line for line in done.stderr.splitlines() if line.startswith("kit run: ")]
    assert len(message) == 1, done.stderr
    assert f"kit run: interrupted by {signame} {PHASES[phase]}" in message[0]
    assert not left, f"processes left behind: {left}"

    runs = {r.info.run_name: r for r in project.runs("tiny")}
    assert runs["tiny"].info.status == "KILLED"
    assert runs["tiny"].data.tags["kit.status"] == "killed"
    if "train" in runs:
        expected = "KILLED" if phase in ("step", "contract") else "FINISHED"
        assert runs["train"].info.status == expected

    if phase in ("start", "step", "contract", "gate", "register"):
        assert kit_models(capsys) in ("no registered model", "history: no promotions yet")
        return
    # A version exists: `kit models` says its promotion was interrupted, and the next run
    # (after Ctrl-C) or the next promote (after SIGTERM) repairs it.
    shown = kit_models(capsys)
    assert "INTERRUPTED" in shown, shown
    moved = phase == "audit"  # the alias moved before the audit write was cut short
    assert version_line(shown, "1").split()[-2:] == (["champion", runs["tiny"].info.run_id] if moved
                                                     else ["-", runs["tiny"].info.run_id]), shown
    if signame == "SIGINT":
        again = project.kit("run", str(path))
        assert again.returncode == 0, again.stderr
        # Moved: the alias holds v1, whose files this run has again, so nothing is registered;
        # not moved: v1 is abandoned and this run's v2 takes the alias.
        expected = {"1": "done"} if moved else {"1": "abandoned", "2": "done"}
        if moved:
            assert "champion already holds these files (tiny-model v1)" in again.stdout
    else:
        from kit.cli import main

        assert main(["promote", "tiny-model", "1", "--alias", "champion"]) == (2 if moved else 0)
        expected = {"1": "done"}
    after = kit_models(capsys)
    assert "INTERRUPTED" not in after, after
    for version, promotion in expected.items():
        assert version_line(after, version).split()[4] == promotion, after
    holder = max(expected)
    assert "champion" in version_line(after, holder), after
    history = after.split("\nhistory")[1]
    moves = sum(state == "done" for state in expected.values())
    assert history.count(" promote ") == moves, after  # one event per move, none lost or doubled


def kit_models(capsys) -> str:
    """`kit models tiny-model`, in this process (the store is already open here)."""
    from kit.cli import main

    capsys.readouterr()
    code = main(["models", "tiny-model"])
    out, err = capsys.readouterr()
    if code != 0:
        assert "no registered model" in err, err
        return "no registered model"
    return out.strip().splitlines()[-1] if "history: no promotions yet" in out and "INTERRUPTED" not in out else out


def version_line(shown: str, version: str) -> str:
    """The versions table's row for `version`, its cells separated by spaces (table borders dropped)."""
    rows = (line.replace("│", " ") for line in shown.splitlines())
    return next(row for row in rows if row.split()[:1] == [version])
