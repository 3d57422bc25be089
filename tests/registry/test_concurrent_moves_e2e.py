"""Promotions and rollbacks of one alias from processes that share nothing but the team stack
(PostgreSQL + MLflow with basic-auth, `team_server`; separate working folders and HOMEs, each its own
MLflow user with the grants README "For teams" gives an editor, as CI jobs on separate machines),
started together, two rounds, one SIGKILLed midway: no move reported done is lost, every
from-version is the holder the log had before it, each is recorded under the user the server
authenticated, and the alias ends at the log's head."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

MOVER = textwrap.dedent('''
    import json, os, random, sys, time
    from pathlib import Path
    from kit.registry import Registry, RegistryError, versions
    from kit.registry.errors import HolderChanged

    seed, moves, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(seed)
    registry = Registry(Path.cwd())
    while time.time() < start:
        time.sleep(0.01)
    for index in range(moves):
        kind = rng.choice(["promote", "promote", "compare-and-set", "rollback"])
        try:
            if kind == "rollback":
                event = registry.rollback("m", "champion", reason=f"round move {index}")
            else:
                kwargs = {}
                if kind == "compare-and-set":
                    kwargs["expected_holder"] = versions.holder(registry.client, "m", "champion")
                event = registry.promote("m", rng.choice("123456"), "champion", reason=f"move {index}", **kwargs)
            print(json.dumps({"attempt": event.attempt, "from": event.from_version, "to": event.to_version,
                              "action": event.action}), flush=True)
        except (HolderChanged, RegistryError) as refused:
            print(json.dumps({"refused": str(refused)}), flush=True)
''')

WORKERS, MOVES, ROUNDS = 4, 5, 2
PASSWORD = "mover-password-1"


@pytest.fixture(scope="module")
def shared(team_server):
    """Model `m` with six versions whose gates passed, on the server only, v1 promoted by the admin
    (which creates the audit log `m.kit-audit` and the `kit-audit` experiment), and an editor user
    per mover process: EDIT on `m`, on `m.kit-audit` and on the `kit-audit` experiment."""
    from mlflow import MlflowClient

    from kit.registry import Registry, versions
    from kit.registry.audit import EXPERIMENT

    with admin_env(team_server):
        client = MlflowClient(team_server.uri)
        experiment = client.create_experiment("concurrent-moves")
        run = client.create_run(experiment)
        for _ in range(6):
            versions.register(client, "m", f"runs:/{run.info.run_id}/model", run.info.run_id, {"kit.gates": "passed"})
        Registry(Path(tempfile.mkdtemp()), client).promote("m", "1", "champion")
        auth = team_server.auth()
        audit_experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
        for name in [*(f"ci-job-{r}-{n}" for r in range(ROUNDS) for n in range(WORKERS)), "repairer"]:
            auth.create_user(name, PASSWORD)
            auth.grant_user_permission(name, "registered_model", "m", "EDIT")
            auth.grant_user_permission(name, "registered_model", "m.kit-audit", "EDIT")
            auth.grant_user_permission(name, "experiment", audit_experiment, "EDIT")
    return team_server, client


@contextmanager
def admin_env(team_server):
    """This process signed in as the admin (MlflowClient and the auth API read os.environ)."""
    saved = {k: os.environ.get(k) for k in team_server.env}
    os.environ.update(team_server.env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def machine(tmp_path, team_server, name: str) -> dict:
    """A working folder and HOME of its own, the server's URI and this job's MLflow user."""
    home = tmp_path / name
    (home / "project").mkdir(parents=True)
    (home / "project" / "pyproject.toml").write_text("[project]\nname = 'job'\n")
    (home / "mover.py").write_text(MOVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KIT_"))}
    env.update(team_server.as_user(name, PASSWORD), HOME=str(home), KIT_PROJECT_ROOT=str(home / "project"),
               MLFLOW_DISABLE_TELEMETRY="true")
    return {"cwd": home / "project", "env": env, "script": home / "mover.py"}


def log_of(client) -> list:
    """The raw requests, read here independently of the kit's own replay."""
    found = client.search_model_versions("name = 'm.kit-audit'", max_results=10000)
    return sorted(found, key=lambda v: int(v.version))


def replayed(requests) -> tuple[list, str | None]:
    """A second, plain implementation of what the requests mean: (applied moves, holder)."""
    stack, applied, seen = [], [], set()
    for request in requests:
        tags = request.tags
        if tags["kit.audit.attempt"] in seen:
            continue
        seen.add(tags["kit.audit.attempt"])
        holder = stack[-1] if stack else None
        expected = tags["kit.audit.expected"]
        if expected != "*" and (expected or None) != holder:
            continue
        if tags["kit.audit.action"] == "rollback":
            if len(stack) < 2:
                continue
            stack.pop()
        elif tags["kit.audit.to_version"] == holder:
            continue
        else:
            stack.append(tags["kit.audit.to_version"])
        applied.append((tags["kit.audit.attempt"], holder, stack[-1], tags["kit.audit.user"]))
    return applied, stack[-1] if stack else None


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_moves_from_machines_sharing_only_the_server(shared, tmp_path, round_):
    team_server, client = shared
    names = [f"ci-job-{round_}-{n}" for n in range(WORKERS)]
    machines = [machine(tmp_path, team_server, name) for name in names]
    start = time.time() + 8  # every process imported and connected, then all move at once
    processes = [subprocess.Popen([sys.executable, str(m["script"]), str(round_ * 100 + n), str(MOVES), str(start)],
                                  cwd=m["cwd"], env=m["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for n, m in enumerate(machines)]
    victim = processes[0] if round_ > 0 else None  # round 0: nobody killed, the alias must agree unrepaired
    if victim:
        first = victim.stdout.readline()  # one move done, the next one under way
        time.sleep(random.Random(round_).random() * 0.4)
        victim.send_signal(signal.SIGKILL)
    reported = []
    began = start
    for name, process in zip(names, processes):
        out, err = process.communicate(timeout=600)
        if process is victim:
            assert process.returncode == -signal.SIGKILL
            out = first + out
        else:
            assert process.returncode == 0, err
        reported += [{**json.loads(line), "by": name} for line in out.splitlines()]
    finished = time.time()

    if victim:  # what anyone's next `kit models` does for an alias a killed move left behind
        env = machine(tmp_path, team_server, "repairer")["env"]
        shown = subprocess.run([sys.executable, "-m", "kit.cli", "models", "m"], cwd=tmp_path / "repairer" / "project",
                               env=env, capture_output=True, text=True, timeout=300)
        assert shown.returncode == 0, shown.stderr
        assert "moved outside kit" not in shown.stdout
    with admin_env(team_server):
        requests = log_of(client)
    applied, head = replayed(requests)
    done = [r for r in reported if "attempt" in r]
    assert done and len(done) + sum("refused" in r for r in reported) >= WORKERS * MOVES - MOVES
    by_attempt = {a: (before, after, user) for a, before, after, user in applied}
    for move in done:  # no lost event: every move a process reported is in the log, as reported, by its user
        assert by_attempt[move["attempt"]] == (move["from"], move["to"], move["by"]), move
    from kit.registry.audit import AuditLog

    with admin_env(team_server):
        events = AuditLog(client, tmp_path).events("m", "champion")
        holder = client.get_registered_model("m").aliases["champion"]
    assert [(e.attempt, e.from_version, e.to_version) for e in events if e.attempt] == \
        [(a, before, after) for a, before, after, _ in applied]  # the kit's replay agrees with the plain one
    assert holder == head
    refused = sum("refused" in r for r in reported)
    print(f"\nround {round_}: {len(done)} moves done, {refused} refused, {len(requests)} requests in the log so far, "
          f"{finished - began:.1f} s for {WORKERS} processes x {MOVES} moves"
          + (", one killed" if victim else ""))
