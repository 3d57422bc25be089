"""MLflow's scoring server as a child process: start it on a model URI or folder, know when it
answers, stop it gracefully.

`mlflow models serve --env-manager local` runs `bash -c "exec uvicorn ..."` under the mlflow
CLI process. We start it in a session of its own, so a Ctrl-C in the terminal reaches only
the kit (which then stops its backends in order, after their in-flight requests), and so
`stop()` can signal the CLI and uvicorn together through the process group.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.errors import StepFailure

# uvicorn reads its options from UVICORN_* variables (click's auto_envvar_prefix). A long
# keep-alive lets a pooled client keep its connections across idle spells; no access log:
# a line per request costs CPU and fills the disk (the kit keeps its own prediction log).
UVICORN_ENV = {"UVICORN_TIMEOUT_KEEP_ALIVE": "75", "UVICORN_ACCESS_LOG": "false",
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


class ScoringServerError(StepFailure):
    """The scoring server did not start or stopped answering; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def venv_bin() -> Path:
    """The bin/ folder of the environment running the kit: `mlflow` and `uvicorn` come from there."""
    return Path(sys.executable).parent


class ScoringServer:
    """One `mlflow models serve` process. `launch` starts it, `wait` blocks until /ping answers."""

    def __init__(self, model_uri: str, host: str, port: int, process: subprocess.Popen, log_path: Path,
                 own_log: bool, log_offset: int = 0):
        self.model_uri, self.host, self.port = model_uri, host, port
        self.process, self.log_path, self._own_log, self._log_offset = process, log_path, own_log, log_offset

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def launch(cls, model_uri: str | Path, port: int, host: str = "127.0.0.1", tracking_uri: str | None = None,
               log_path: Path | None = None, workers: int | None = None) -> ScoringServer:
        mlflow_cli = venv_bin() / "mlflow"
        if not mlflow_cli.exists():
            raise ScoringServerError(f"no mlflow command in {venv_bin()}; run the kit from its environment (.venv)")
        uri = str(model_uri)
        if "://" not in uri and ":/" not in uri:  # a local folder: absolute, the server has another cwd
            folder = Path(uri).resolve()
            if not (folder / "MLmodel").is_file():
                raise ScoringServerError(f"{folder} is not an MLflow model folder (no MLmodel file)")
            uri = str(folder)
        env = {**os.environ, **UVICORN_ENV,
               "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking_uri
        own_log = log_path is None
        if own_log:
            handle, name = tempfile.mkstemp(prefix="kit-scoring-", suffix=".log")
            os.close(handle)
            log_path = Path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            offset = log.tell()  # the file may hold earlier launches: ours starts here
            process = subprocess.Popen(
                [str(mlflow_cli), "models", "serve", "-m", uri, "--env-manager", "local",
                 "--host", host, "--port", str(port), "--workers", str(workers or default_workers())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=_die_with_parent)
        return cls(uri, host, port, process, log_path, own_log, offset)

    def ready(self) -> bool:
        """One GET /ping: True on 200; raises ScoringServerError if the process has exited."""
        if self.process.poll() is not None:
            raise ScoringServerError(f"the scoring server for {self.model_uri} exited with code "
                                     f"{self.process.returncode}:\n{self.log_tail()}")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            connection.request("GET", "/ping")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def wait(self, timeout: float = 180) -> ScoringServer:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ScoringServerError(f"the scoring server for {self.model_uri} did not answer /ping on "
                                         f"{self.url} within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def port_taken(self) -> bool:
        """Did it fail because another process holds the port?"""
        return "address already in use" in self._log().lower()

    def log_tail(self, lines: int = 25) -> str:
        """The end of this launch's output, after uvicorn's ERROR lines (which the mlflow CLI's
        own traceback, printed last, would otherwise push out of view)."""
        text = self._log().rstrip().splitlines()
        tail = text[-lines:]
        errors = [line for line in text[:-lines] if line.startswith("ERROR:")]
        return "\n".join(errors + (["..."] if errors else []) + tail) or "(no output)"

    def _log(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the CLI and uvicorn (uvicorn finishes its in-flight requests), SIGKILL after `timeout`."""
        group = self.process.pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(group):
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(timeout=5)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)


def default_workers() -> int:
    """One uvicorn worker per core (at most 4): MLflow's default of one saturated at ~250
    single-row requests/s here, so 8 clients queued to a 57 ms p99."""
    return max(1, min(4, os.cpu_count() or 1))


def start_scoring_server(model_uri: str | Path, port: int, host: str = "127.0.0.1", tracking_uri: str | None = None,
                         timeout: float = 180, log_path: Path | None = None, workers: int | None = None) -> ScoringServer:
    """Start `mlflow models serve` on `model_uri` (models:/NAME@ALIAS, models:/NAME/3, runs:/..., or
    a local model folder) and return once GET /ping answers 200. Raises ScoringServerError with
    the tail of the server's log if it exits or does not answer within `timeout` seconds.

    `port=0` picks a free port, and another one if some process takes it while the model loads
    (uvicorn binds only after loading, seconds later)."""
    for attempt in range(1, 4):
        server = ScoringServer.launch(model_uri, port or free_port(host), host, tracking_uri, log_path, workers)
        try:
            return server.wait(timeout)
        except ScoringServerError:
            retry = port == 0 and attempt < 3 and server.port_taken()
            server.stop(timeout=5)
            if not retry:
                raise
        except BaseException:
            server.stop(timeout=5)
            raise
    raise AssertionError("not reached")


try:  # resolved now: the child between fork and exec should call nothing that loads or locks
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child: SIGTERM it when the process (strictly: the thread) that started it dies,
    so a front killed with SIGKILL leaves no scoring server behind (MLflow does the same for
    uvicorn under its CLI). Start servers from a long-lived thread for this reason."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _group_alive(group: int) -> bool:
    """Is any live (non-zombie) process left in the process group? Orphaned children are
    reparented to PID 1, which in a container may never reap them, so zombies count as gone."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel (zombies count as alive there)
        try:
            os.killpg(group, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False
