"""kit.native.stderr_to_file: a native library's writes to fd 2 stay off the terminal, shown
only when the call fails, and two threads inside at once leave fd 2 as they found it."""

from __future__ import annotations

import os
import threading

import pytest

from kit.native import stderr_to_file


def test_writes_to_fd_2_are_kept_off_stderr(capfd):
    with stderr_to_file():
        os.write(2, b"E external/local_xla: Unable to register cuDNN factory\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_a_failing_call_shows_what_was_written(capfd):
    with pytest.raises(RuntimeError):
        with stderr_to_file():
            os.write(2, b"native: could not load the model\n")
            raise RuntimeError("load failed")
    assert "native: could not load the model" in capfd.readouterr().err


def test_two_threads_at_once_restore_fd_2(capfd):
    before = os.fstat(2)
    inside, leave = threading.Barrier(2), threading.Event()

    def call(name: bytes) -> None:
        with stderr_to_file():
            inside.wait(timeout=10)
            os.write(2, name)
            if name == b"first":
                leave.wait(timeout=10)  # the first in leaves last

    threads = [threading.Thread(target=call, args=(name,)) for name in (b"first", b"second")]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=10)
    leave.set()
    threads[0].join(timeout=10)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    os.write(2, b"visible\n")
    assert capfd.readouterr().err == "visible\n"
