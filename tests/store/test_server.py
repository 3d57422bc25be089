"""`kit server` refusals that need no stack (the stack itself: test_team_e2e.py, via `team_server`)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

from conftest import KIT


def kit_server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KIT, "server", *args], capture_output=True, text=True, timeout=120)


def test_a_taken_port_is_refused_before_anything_starts():
    with socket.socket() as taken, tempfile.TemporaryDirectory(prefix="kit-team-", dir="/tmp") as folder:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = kit_server("up", "--dir", folder, "--port", str(port))
        assert done.returncode == 2, done.stderr
        assert f"--port {port}: that port is taken on 127.0.0.1" in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""  # nothing to eval
        assert not (Path(folder) / "postgres" / "PG_VERSION").exists()


def test_down_on_a_folder_without_a_stack_says_so(tmp_path):
    done = kit_server("down", "--dir", str(tmp_path))
    assert done.returncode == 2 and "holds no team stack" in done.stderr
