"""`kit serve edge` on a bundle whose manifest.json or feature_spec.json was mutated (truncated,
wrong types, missing keys, bad hashes, huge numbers): the bundle check `kit serve edge` runs first
(read_bundle, in fetch_bundle) refuses it with a BundleError naming the file, or the Node server it
then starts (serve_command) either serves without a 5xx or exits 1 with one line naming the file.
Seeded; KIT_FUZZ_CASES=3000 for a longer run."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import select
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kit.features import FeatureSpec, categorical, numeric
from kit.targets.edge import read_bundle, write_bundle
from kit.targets.edge.bundle import BundleError
from kit.targets.edge.deploy import serve_command

SEED = 20261202
CASES = int(os.environ.get("KIT_FUZZ_CASES", "300"))
MAX_SERVER_STARTS = int(os.environ.get("KIT_FUZZ_SERVER_STARTS", "6"))
ODD = [None, True, 0, -1, 1.5, 2**63, -1e308, 1e308, "HUGE", "", "x", "é\u0000\u202e", "a" * 5000, [], [None], {}, {"a": 1}]
DUMP = {"name": "tree", "version": "v4", "num_class": 1, "num_tree_per_iteration": 1, "label_index": 0, "max_feature_idx": 1,
        "objective": "binary sigmoid:1", "average_output": False, "feature_names": ["x", "c"],
        "tree_info": [{"tree_structure": {"split_feature": 0, "threshold": 1.5, "decision_type": "<=", "default_left": True,
                                          "missing_type": "NaN", "left_child": {"leaf_value": -0.5}, "right_child": {"leaf_value": 0.5}}}]}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle-fuzz")
    (tmp / "model").mkdir()
    (tmp / "model" / "model.json").write_text(json.dumps(DUMP))
    spec = FeatureSpec.of(numeric("x", [0.0, 1.0, 2.0, 3.0], transform="standardize", missing="nan"),
                          categorical("c", ["a", "b", "b"], output="index"))
    return write_bundle(tmp / "bundle", model_dir=tmp / "model", kind="lightgbm-json", task="binary",
                        labels=["no", "yes"], feature_spec=spec, model_name="fuzzed")


def slots(value, out):
    if isinstance(value, (dict, list)):
        for key in list(value.keys() if isinstance(value, dict) else range(len(value))):
            out.append((value, key))
            slots(value[key], out)
    return out


def mutate(bundle: Path, rand: random.Random) -> str:
    target = rand.choice(["manifest.json", "feature_spec.json"])
    path = bundle / target
    original = path.read_bytes()
    roll = rand.random()
    if roll < 0.15:
        cut = rand.randrange(len(original))
        path.write_bytes(original[:cut])
        what = f"truncated to {cut} bytes"
    elif roll < 0.25 and target == "manifest.json":
        doc = json.loads(original)
        key = rand.choice(sorted(doc["files"]))
        doc["files"][key] = rand.choice(["0" * 64, "zz"])
        path.write_text(json.dumps(doc))
        what = f"bad hash for {key}"
    else:
        doc = json.loads(original)
        parent, key = rand.choice(slots(doc, []))
        op = rand.randrange(3)
        if op == 0:
            del parent[key]
            what = f"removed {key}"
        elif op == 1:
            parent[key] = copy.deepcopy(rand.choice(ODD))
            what = f"set {key} to {str(parent[key])[:30]}"
        else:
            (parent if isinstance(parent, dict) else doc)[f"extra{rand.randrange(9)}"] = rand.choice(ODD)
            what = "added a key"
        path.write_text(json.dumps(doc).replace('"HUGE"', "1e999"))
    if target == "feature_spec.json" and rand.random() < 0.85:  # usually re-hashed: reach the spec's own checks
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["files"]["feature_spec.json"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (bundle / "manifest.json").write_text(json.dumps(manifest))
    return f"{target}: {what}"


def start_or_refuse(bundle: Path) -> tuple[str, str]:
    """Run the Node server `kit serve edge` execs: ("served", "") after probing it, or ("refused", stderr)."""
    process = subprocess.Popen(serve_command(bundle, 0, "127.0.0.1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            process.wait(timeout=30)
            return "refused", f"exit {process.returncode}: {process.stderr.read()}"
        url = line.split()[-1]
        for path in ("/predict?x=1&c=a", "/predict?x=zz", "/predict", "/metadata", "/openapi.json", "/metrics"):
            try:
                status = urllib.request.urlopen(url + path, timeout=10).status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status < 500, f"{path} -> {status}"
        return "served", ""
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def test_mutated_bundles_are_refused_naming_the_file_or_served(base, tmp_path):
    rand = random.Random(SEED)
    tally = {"refused by the bundle check": 0, "accepted": 0, "server runs": 0}
    for case in range(CASES):
        bundle = tmp_path / f"case{case}"
        subprocess.run(["cp", "-r", str(base), str(bundle)], check=True)
        what = f"case {case}: {mutate(bundle, rand)}"
        try:
            read_bundle(bundle)
        except BundleError as exc:
            assert "manifest.json" in str(exc) or "feature_spec.json" in str(exc), f"{what}: {exc}"
            tally["refused by the bundle check"] += 1
            continue
        tally["accepted"] += 1
        if tally["server runs"] < MAX_SERVER_STARTS:
            tally["server runs"] += 1
            outcome, stderr = start_or_refuse(bundle)
            if outcome == "refused":
                assert stderr.startswith("exit 1: error: cannot start: ") and stderr.count("\n") == 1, f"{what}: {stderr}"
                assert "manifest.json" in stderr or "feature_spec.json" in stderr, f"{what}: {stderr}"
    print(f"bundle fuzz (read_bundle + Node server): {CASES} cases, seed {SEED}: {tally}")
    assert tally["refused by the bundle check"] > CASES / 4
