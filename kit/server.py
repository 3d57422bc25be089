"""`kit server up|down`: a real team stack on this machine, for trying the kit as a team and for tests.

PostgreSQL (Debian's package, loopback only) holds MLflow's runs and registry and, in a second
database, the users and permissions of MLflow's basic-auth app; `mlflow server` runs on it with
authentication on and proxies artifacts into a folder. Everything lives under one folder, DIR:

    DIR/postgres/        the database cluster (owned by the `postgres` user when run as root:
                         PostgreSQL refuses to run as root)
    DIR/artifacts/       the server's --artifacts-destination
    DIR/basic_auth.ini   MLflow's auth config (MLFLOW_AUTH_CONFIG_PATH), mode 600
    DIR/secrets.json     generated passwords: database, admin user, Flask secret key, webhook key (mode 600)
    DIR/server.json      ports and pids of the running stack
    DIR/logs/            postgres.log, mlflow.log

`down` stops both by pid and keeps every file, so a second `up` on the same DIR finds every
run, model and user again (on the same ports when they are still free).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SpecError, StepFailure

ADMIN = "admin"
DB_USER = "kit"
DATABASES = ("mlflow", "mlflow_auth")  # runs and registry; the auth app's users and permissions
WORKERS = 1  # uvicorn workers: one process (Flask requests in its thread pool) starts fastest on 2 shared cores
READY_TIMEOUT = 600  # s: the first start migrates two empty databases (minutes on a loaded machine)
# The auth app hashes the password (PBKDF2) on every request; caching a successful check for a
# minute makes tracking calls several times cheaper. A changed password reaches the other worker
# within that minute.
AUTH_CACHE_SECONDS = 60


@dataclass
class Stack:
    folder: Path
    uri: str
    username: str
    password: str
    mlflow_pid: int
    postgres_pid: int
    started: bool  # False: it was already running

    def exports(self) -> str:
        """Shell lines to `eval`: every kit command (and MLflow itself) then uses this server."""
        return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in (
            ("MLFLOW_TRACKING_URI", self.uri), ("MLFLOW_TRACKING_USERNAME", self.username),
            ("MLFLOW_TRACKING_PASSWORD", self.password)))


def up(folder: Path, port: int | None = None, say=print) -> Stack:
    """Start PostgreSQL and the MLflow server on `folder` (or find them running) and return how to reach them."""
    folder = folder.resolve()
    state = _read_json(folder / "server.json")
    secret = _secrets(folder)
    if _alive(state.get("mlflow_pid"), "mlflow") and _postgres_pid(folder / "postgres"):
        if port and port != state["port"]:
            raise SpecError(f"the stack in {folder} is already running on port {state['port']}, not {port}: "
                            f"`kit server down --dir {folder}` first")
        return _stack(folder, state, secret, started=False)

    bin_dir = _postgres_bin()
    if _alive(state.get("mlflow_pid"), "mlflow"):  # its database is gone: start both afresh
        _stop_group(state["mlflow_pid"])
    _prepare(folder)
    pgdata = folder / "postgres"
    if _postgres_pid(pgdata):  # left over from a crashed stack: start it again with the ports below
        _stop_postgres(bin_dir, pgdata)
    mlflow_port = _port(port, state.get("port"), "--port")
    pg_port = _port(None, state.get("postgres_port"), None, avoid={mlflow_port})
    if not (pgdata / "PG_VERSION").is_file():
        say(f"kit server: creating a PostgreSQL cluster in {pgdata}")
        _initdb(bin_dir, folder, secret["database"])
    state = {"port": mlflow_port, "postgres_port": pg_port}
    try:
        say(f"kit server: starting PostgreSQL on 127.0.0.1:{pg_port}")
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(folder / "logs" / "postgres.log"),
                      "-w", "-t", "60", "-o", f"-p {pg_port}", "start"], "start PostgreSQL", folder)
        _create_databases(pg_port, secret["database"])
        state["postgres_pid"] = _postgres_pid(pgdata)
        _write_auth_config(folder, pg_port, secret)
        say(f"kit server: starting the MLflow server (basic-auth) on http://127.0.0.1:{mlflow_port}")
        state["mlflow_pid"] = _start_mlflow(folder, mlflow_port, pg_port, secret)
        _write_json(folder / "server.json", state)
        _wait_ready(folder, state, secret)
    except BaseException:  # a stack that did not come up leaves no process behind
        if _alive(state.get("mlflow_pid"), "mlflow"):
            _stop_group(state["mlflow_pid"])
        if _postgres_pid(pgdata):
            _stop_postgres(bin_dir, pgdata)
        raise
    return _stack(folder, state, secret, started=True)


def down(folder: Path) -> list[str]:
    """Stop the MLflow server and PostgreSQL of `folder` by pid, keeping every file. Returns what it stopped."""
    folder = folder.resolve()
    if not (folder / "server.json").is_file() and not (folder / "postgres").is_dir():
        raise SpecError(f"{folder} holds no team stack (no server.json): nothing to stop")
    state = _read_json(folder / "server.json")
    stopped = []
    pid = state.pop("mlflow_pid", None)
    if _alive(pid, "mlflow"):
        _stop_group(pid)
        stopped.append(f"MLflow server (pid {pid})")
    pg_pid = _postgres_pid(folder / "postgres")
    if pg_pid:
        _stop_postgres(_postgres_bin(), folder / "postgres")
        stopped.append(f"PostgreSQL (pid {pg_pid})")
    state.pop("postgres_pid", None)
    _write_json(folder / "server.json", state)  # the ports stay: the next `up` takes them again if free
    return stopped


# -- PostgreSQL --------------------------------------------------------------------------------

def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise SpecError("PostgreSQL is not installed: run scripts/setup-system (it installs Debian's "
                        "`postgresql` package)")
    return Path(found[-1]).parent


def _as_root() -> bool:
    return os.geteuid() == 0


def _postgres_ids() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise SpecError("running as root, but there is no `postgres` user to run PostgreSQL as (PostgreSQL "
                        "refuses root): install Debian's `postgresql` package (scripts/setup-system)") from None
    return entry.pw_uid, entry.pw_gid


def _as_postgres(command: list[str], what: str, folder: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the `postgres` user when we are root (it refuses root), else as us."""
    if _as_root():
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        log = folder / "logs" / "postgres.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.is_file() else ""
        raise StepFailure(f"could not {what}: {(done.stderr or done.stdout).strip()}\n{tail}".rstrip())
    return done


def _prepare(folder: Path) -> None:
    """The folders, owned so that the `postgres` user can write its cluster and its log."""
    for sub in ("", "artifacts", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    pgdata = folder / "postgres"
    pgdata.mkdir(exist_ok=True)
    pgdata.chmod(0o700)  # initdb and postgres insist on it
    log = folder / "logs" / "postgres.log"
    log.touch()
    if not _as_root():
        return
    folder.chmod(folder.stat().st_mode | 0o111)  # the postgres user passes through, reads nothing
    uid, gid = _postgres_ids()
    for path in (pgdata, log):
        os.chown(path, uid, gid)
    if _as_postgres(["test", "-w", str(pgdata)], "", folder, check=False).returncode != 0:
        raise SpecError(f"the postgres user cannot reach {pgdata}: a folder above it is closed to other users "
                        f"(a pytest temporary folder is, for one); pick a --dir whose parent folders others may "
                        f"enter (chmod o+x)")


def _initdb(bin_dir: Path, folder: Path, password: str) -> None:
    pwfile = folder / "postgres.pw"  # read by initdb as the postgres user, then removed
    pwfile.write_text(password + "\n")
    try:
        pwfile.chmod(0o600)
        if _as_root():
            os.chown(pwfile, *_postgres_ids())
        _as_postgres([str(bin_dir / "initdb"), "-D", str(folder / "postgres"), "-U", DB_USER, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"], "create the PostgreSQL cluster", folder)
    finally:
        pwfile.unlink(missing_ok=True)
    # Loopback TCP only: no other machine, and no Unix socket in a folder other users can see.
    with open(folder / "postgres" / "postgresql.conf", "a") as conf:
        conf.write("\n# kit server\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")


def _postgres_pid(pgdata: Path) -> int | None:
    """The postmaster's pid from its pid file, if that process is alive."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid, "postgres") else None


def _stop_postgres(bin_dir: Path, pgdata: Path) -> None:
    # pg_ctl stops the postmaster whose pid its pid file names; "fast" rolls back open
    # transactions and checkpoints, so nothing committed is lost.
    _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
                 "stop PostgreSQL", pgdata.parent)


def _database_uri(pg_port: int, password: str, database: str) -> str:
    return f"postgresql://{DB_USER}:{password}@127.0.0.1:{pg_port}/{database}"


def _create_databases(pg_port: int, password: str) -> None:
    import psycopg

    # autocommit: CREATE DATABASE refuses to run inside a transaction
    with psycopg.connect(_database_uri(pg_port, password, "postgres"), autocommit=True) as connection:
        for name in DATABASES:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(f'CREATE DATABASE "{name}"')


# -- MLflow --------------------------------------------------------------------------------

def _write_auth_config(folder: Path, pg_port: int, secret: dict) -> None:
    """MLflow's basic-auth config: users in their own database; the admin is created at the first start
    with the generated password (MLflow ships none and ignores it once the user exists)."""
    path = folder / "basic_auth.ini"
    path.touch(mode=0o600)
    path.write_text("[mlflow]\n"
                    "default_permission = READ\n"
                    f"database_uri = {_database_uri(pg_port, secret['database'], 'mlflow_auth')}\n"
                    f"admin_username = {ADMIN}\n"
                    f"admin_password = {secret['admin']}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n")


def _start_mlflow(folder: Path, port: int, pg_port: int, secret: dict) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_AUTH_CONFIG_PATH=str(folder / "basic_auth.ini"),
               MLFLOW_FLASK_SERVER_SECRET_KEY=secret["flask"], MLFLOW_DISABLE_TELEMETRY="true")
    # The stack listens on loopback only, so registry webhooks may call back to `kit serve` on this
    # machine over plain HTTP (MLflow allows only https to public addresses by default).
    env.setdefault("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    env.setdefault("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    env.setdefault("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", secret["webhooks"])
    # MLflow caches the webhooks of each event for this many seconds (default 60): a `kit serve
    # --follow-webhook` that just registered would miss the changes made meanwhile.
    env.setdefault("MLFLOW_WEBHOOK_CACHE_TTL", "2")
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
               "--backend-store-uri", _database_uri(pg_port, secret["database"], "mlflow"),
               "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    with open(folder / "logs" / "mlflow.log", "ab") as log:
        # Its own session: `down` stops the server and its workers as one process group.
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=folder)
    return process.pid


def _wait_ready(folder: Path, state: dict, secret: dict) -> None:
    """Until the server answers an authenticated request as the admin (it migrates empty databases first)."""
    import requests

    url = f"http://127.0.0.1:{state['port']}/api/2.0/mlflow/users/get"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(state["mlflow_pid"], "mlflow"):
            raise StepFailure(f"the MLflow server stopped while starting; the end of {folder / 'logs' / 'mlflow.log'}:"
                              f"\n{_tail(folder / 'logs' / 'mlflow.log')}")
        try:
            answer = requests.get(url, params={"username": ADMIN}, auth=(ADMIN, secret["admin"]), timeout=30)
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still load
            time.sleep(0.5)
            continue
        if answer.status_code == 200:
            return
        if answer.status_code in (401, 403):
            raise StepFailure(f"the MLflow server refused the admin password kept in {folder / 'secrets.json'}: "
                              "was it changed through the API? Put the new one there.")
        time.sleep(0.5)
    raise StepFailure(f"the MLflow server did not answer within {READY_TIMEOUT}s; see {folder / 'logs' / 'mlflow.log'}")


def _stack(folder: Path, state: dict, secret: dict, started: bool) -> Stack:
    return Stack(folder, f"http://127.0.0.1:{state['port']}", ADMIN, secret["admin"], state["mlflow_pid"],
                 state["postgres_pid"], started)


# -- processes, ports, files ------------------------------------------------------------------

def _alive(pid: int | None, name: str) -> bool:
    """Whether `pid` runs and is the program we started (a pid can be reused after a reboot)."""
    if not pid:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return name.encode() in command


def _stop_group(pid: int, timeout: float = 30) -> None:
    """SIGTERM the server's process group (uvicorn and its workers), SIGKILL what is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            _reap(pid)
            time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child when `up` and `down` run in one process (tests)
    except ChildProcessError:
        pass


def _port(wanted: int | None, previous: int | None, option: str | None, avoid: set[int] = frozenset()) -> int:
    """`wanted` if given (refused when taken), else the previous port if still free, else a free one."""
    if wanted:
        if not _free(wanted):
            raise SpecError(f"{option} {wanted}: that port is taken on 127.0.0.1; pick another or leave {option} out")
        return wanted
    if previous and previous not in avoid and _free(previous):
        return previous
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in avoid:
            return port


def _free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free to them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _secrets(folder: Path) -> dict:
    """Generated once per DIR and kept (mode 600): the stack must come back with the same passwords."""
    path = folder / "secrets.json"
    found = _read_json(path)
    if not found:
        found = {"database": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24),
                 "flask": secrets.token_urlsafe(32)}
    if "webhooks" not in found:  # also for a DIR made before webhooks were used
        # MLflow encrypts each webhook's signing secret with this Fernet key; without a kept one it
        # draws a new key per start, and after a restart no stored webhook could sign a delivery.
        found["webhooks"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
        folder.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(found, indent=1))
    return found


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise SpecError(f"{path} is not valid JSON ({error}); it is kit server's own file: restore or remove it") from None


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
