"""Targets plug into `kit serve`, `kit deploy` and the gates through entry points only: a third
target, installed as its own distribution (here a dist-info folder on PYTHONPATH), shows up in
`kit serve --help` with its options and runs, without a change to the kit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

KIT = [sys.executable, "-m", "kit.cli"]

FAKE_TARGET = '''
from kit.errors import LibraryError
from kit.gates import Gate, GateResult


class Serve:
    help = "the fake target's toy server"

    def add_arguments(self, parser):
        parser.add_argument("--shout", action="store_true", help="answer in capitals")

    def run(self, args):
        text = f"fake serving {args.name}@{args.alias} on {args.host}:{args.port}"
        print(text.upper() if args.shout else text)
        return 0


class Deploy:
    help = "the fake target's toy deployable"

    def add_arguments(self, parser):
        parser.add_argument("--region", required=True)

    def run(self, args):
        raise LibraryError(f"{args.name}@{args.alias}: bad bundle for region {args.region}")


class FakeGate(Gate):
    type = "fake_gate"

    def evaluate(self, context):
        return GateResult(self.label, self.type, True, 1.0, "", "fake")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A distribution `fake-target` that registers one gate, one serve and one deploy command."""
    site = tmp_path_factory.mktemp("site")
    (site / "fake_target.py").write_text(FAKE_TARGET)
    info = site / "fake_target-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-target\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [kit.gates]
        fake_gate = fake_target:FakeGate

        [kit.serve]
        fake = fake_target:Serve

        [kit.deploy]
        fake = fake_target:Deploy
    """))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def kit(env, *args):
    return subprocess.run([*KIT, *args], env=env, capture_output=True, text=True, timeout=120)


def test_serve_help_lists_every_registered_target_with_its_options(env):
    done = kit(env, "serve", "--help")
    assert done.returncode == 0, done.stderr
    for target in ("edge", "cloud", "fake"):
        assert f"  {target}: " in done.stdout
    assert "the fake target's toy server" in done.stdout and "[--shout]" in done.stdout
    assert "[--log-inputs {full,hash}]" in done.stdout and "[--reject-out-of-range]" in done.stdout
    deploy = kit(env, "deploy", "--help")
    assert "  fake: the fake target's toy deployable" in deploy.stdout and "--region REGION" in deploy.stdout


def test_a_plugged_in_target_serves_with_its_own_options(env):
    done = kit(env, "serve", "fake", "m", "--alias", "champion", "--port", "9", "--shout")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FAKE SERVING M@CHAMPION ON 127.0.0.1:9"


def test_options_of_another_target_are_refused_by_name(env):
    done = kit(env, "serve", "edge", "m", "--alias", "a", "--shout")
    assert done.returncode == 2
    assert done.stderr.strip() == "kit serve: --shout: not an option of the edge target"


def test_a_library_error_from_a_target_command_is_exit_2_in_one_line(env):
    done = kit(env, "deploy", "fake", "m", "--alias", "a", "--region", "eu")
    assert done.returncode == 2
    assert done.stderr.strip() == "kit deploy: m@a: bad bundle for region eu"


def test_a_plugged_in_gate_is_a_known_gate_type(env):
    code = "from kit.gates import known; print(sorted(known()))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "'fake_gate'" in done.stdout and "'edge_parity'" in done.stdout and "'metric_threshold'" in done.stdout


def test_without_the_fake_distribution_the_fake_target_is_unknown():
    done = subprocess.run([*KIT, "serve", "fake", "m", "--alias", "a"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice: 'fake'" in done.stderr
