"""Fuzzing the pipeline surface: Hypothesis writes pipeline files (with `extends`), `--params`
files and `-p` values, random in structure, type, unicode, size and depth. `kit validate` must
exit 0 or 2 with a message: never a traceback, never a hang.

Seeded (derandomize) so a failure reproduces. KIT_FUZZ_SCALE=10 runs ten times the examples
(the longer run); `pytest --hypothesis-show-statistics` prints how many cases each test ran.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import string

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kit.cli import main

from tests.conftest import Project

SCALE = int(os.environ.get("KIT_FUZZ_SCALE", "1"))
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BASE = """
name: base
model: base-model
steps:
  - name: make
    notebook: notebooks/make.ipynb
    parameters: {rows: 10}
    outputs: {out_path: table.csv}
    contracts: {out_path: data_contracts/table.json}
  - name: use
    notebook: notebooks/use.ipynb
    inputs: {in_path: make.out_path}
gates:
  - {type: artifact_size, max_bytes: 1000}
promote: {alias: champion, source: {step: make, output: out_path}}
"""


CHILD = """
extends: base.yaml
name: child
steps:
  - name: use
    notebook: notebooks/use.ipynb
    inputs: {in_path: make.out_path}
    parameters: {rate: 1, label: b, sizes: [1, 2], weights: {b: 2}, nested: [[4]]}
  - name: report
    notebook: notebooks/use.ipynb
    needs: [use]
    inputs: {in_path: make.out_path}
gates:
  - {type: metric_threshold, step: use, metric: accuracy, min: 0.5}
  - {type: no_regression, step: use, metric: accuracy, direction: higher_is_better}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One scratch project for every example (Hypothesis runs many examples per test)."""
    project = Project(tmp_path_factory.mktemp("fuzz"))
    project.notebook("make.ipynb", 'rows = 3\nout_path = "t.csv"\nflag = False\nnames = ["a"]\n'
                                   'anything = None\nexpr = int("3")')
    project.notebook("use.ipynb", 'in_path = "t.csv"\nrate = 0.1\nlabel = "a"\nsizes = [16, 8]\n'
                                  'weights = {"a": 1.0}\nnested = [[1, 2], [3]]')
    (project.root / "data_contracts").mkdir()
    (project.root / "data_contracts" / "table.json").write_text('{"expectations": []}')
    project.pipeline(BASE, "base.yaml")
    saved = os.environ.get("KIT_PROJECT_ROOT")
    os.environ["KIT_PROJECT_ROOT"] = str(project.root)
    yield project
    if saved is None:
        os.environ.pop("KIT_PROJECT_ROOT")
    else:
        os.environ["KIT_PROJECT_ROOT"] = saved


# -- values of every kind ---------------------------------------------------------------------

text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)  # any code point, surrogates too
keys = st.one_of(st.sampled_from(["name", "model", "steps", "gates", "promote", "extends", "rows", "rate", "type",
                                  "make", "use", "notebook", "parameters"]), text)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(), text, st.sampled_from(["yes", "no", "on", "~", "017", "1e-3", "2026-01-01", ".nan", "-.inf", ""]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=20,
)

# -- pipeline-shaped structures: mostly valid keys, values from anywhere -------------------------

step_names = st.one_of(st.sampled_from(["make", "use", "extra"]), values)
notebooks = st.one_of(st.sampled_from(["notebooks/make.ipynb", "notebooks/use.ipynb", "notebooks/missing.ipynb",
                                       "../outside.ipynb", "/etc/passwd", "notebooks/../../x.ipynb", "notebooks",
                                       "notebooks/\0.ipynb", "n" * 300]), values)
parameters = st.dictionaries(st.one_of(st.sampled_from(["rows", "flag", "names", "anything", "expr", "rate", "label",
                                                        "sizes", "weights", "nested", "out_path"]), text), values,
                             max_size=4)
references = st.one_of(st.sampled_from(["make.out_path", "make.nothing", "gone.out_path", "use"]), values)
step = st.fixed_dictionaries(
    {"name": step_names, "notebook": notebooks},
    optional={
        "parameters": st.one_of(parameters, values),
        "inputs": st.one_of(st.dictionaries(st.sampled_from(["in_path", "rows"]), references, max_size=2), values),
        "outputs": st.one_of(st.dictionaries(st.sampled_from(["out_path", "in_path"]),
                                             st.one_of(st.sampled_from(["t.csv", "../x", "/abs"]), values), max_size=2),
                             values),
        "needs": st.one_of(st.lists(step_names, max_size=3), values),
        "contracts": st.one_of(st.dictionaries(st.sampled_from(["out_path", "in_path"]),
                                               st.one_of(st.sampled_from(["data_contracts/table.json", "../t.json",
                                                                          "data_contracts/none.json"]), values),
                                               max_size=2), values),
        "timeout": st.one_of(st.floats(), values),
        "junk": values,
    },
)
gate = st.one_of(
    st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["metric_threshold", "no_regression", "artifact_size",
                                                              "edge_parity", "edge_latency", "nonesuch"]), values)},
                          optional={"step": step_names, "metric": values, "min": values, "max_bytes": values,
                                    "name": values}),
    values,
)
pipelines = st.fixed_dictionaries(
    {},
    optional={
        "extends": st.one_of(st.sampled_from(["base.yaml", "fuzz.yaml", "missing.yaml", "../../base.yaml",
                                              "/etc/passwd", "./base.yaml"]), values),
        "name": st.one_of(st.sampled_from(["fuzz", "bad name"]), values),
        "model": values,
        "description": values,
        "kernel": st.one_of(st.just("kit"), values),
        "timeout": values,
        "steps": st.one_of(st.lists(step, max_size=4), values),
        "gates": st.one_of(st.lists(gate, max_size=3), values),
        "promote": st.one_of(st.fixed_dictionaries({"alias": values, "source": values}), values),
        "junk": values,
    },
)


def dump(data, style: str) -> bytes:
    """`data` as a YAML file: block style (ruamel), or JSON (a subset of YAML 1.2)."""
    if style == "json":
        return json.dumps(data, ensure_ascii=True).encode()
    if style == "json-raw":  # raw code points, lone surrogates written as they are (not UTF-8)
        return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
    stream = io.StringIO()
    writer = YAML(typ="safe", pure=True)
    writer.default_flow_style = False
    try:
        writer.dump(data, stream)
    except Exception:  # what ruamel cannot write (e.g. unhashable keys): fall back to JSON
        return dump(data, "json")
    return stream.getvalue().encode("utf-8", "surrogatepass")


styles = st.sampled_from(["yaml", "json", "json-raw"])


@st.composite
def mutated(draw):
    """A valid pipeline file with random edits: cut, inserted text, re-indented or duplicated lines."""
    lines = BASE.strip().splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["cut", "insert", "indent", "duplicate", "replace"]))
        if kind == "cut":
            del lines[at]
        elif kind == "insert":
            lines.insert(at, draw(st.text(string.printable + "{}[]:-&*!|>'\"%@`", max_size=30)))
        elif kind == "indent":
            lines[at] = " " * draw(st.integers(0, 9)) + lines[at].lstrip()
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        else:
            line = lines[at]
            cut = draw(st.integers(0, len(line)))
            lines[at] = line[:cut] + draw(st.text(max_size=10)) + line[cut:]
        if not lines:
            lines = [""]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def tweaked(draw):
    """A valid pipeline (extending another, or not) with one to three values, keys or entries
    replaced by anything: these get past the schema to the deeper checks."""
    data = YAML(typ="safe", pure=True).load(draw(st.sampled_from([BASE, CHILD])))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        node, key = data, None
        while True:  # walk down a random path, mostly to a leaf
            children = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            if not children:
                break
            key = draw(st.sampled_from(children))
            if not isinstance(node[key], (dict, list)) or draw(st.integers(0, 4)) == 0:
                break
            node, key = node[key], None
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if key is None or action == "add":
            if isinstance(node, dict):
                node[draw(keys)] = draw(values)
            else:
                node.append(draw(values))
        elif action == "delete":
            del node[key]
        else:
            node[key] = draw(st.one_of(values, scalars))
    return dump(data, draw(styles))


nesting = st.builds(lambda depth, kind: {"flow": "[" * depth + "]" * depth,
                                         "block": "".join(f"{'  ' * i}k:\n" for i in range(depth)) + "  " * depth + "x",
                                         "mixed": "steps: " + "{a: " * depth + "1" + "}" * depth}[kind],
                    st.integers(1, 3000), st.sampled_from(["flow", "block", "mixed"])).map(str.encode)


def huge_file(kind: str) -> bytes:
    """Files with huge values (built here, so failure reports stay short)."""
    head = b"name: fuzz\nmodel: m\nsteps:\n- name: make\n  notebook: notebooks/make.ipynb\n"
    return {"digits": head + b"  parameters: {rows: " + b"9" * 5000 + b"}\n",
            "exponent": head + b"  parameters: {rows: 1e999999, names: [" + b"x, " * 20000 + b"]}\n",
            "too long": head + b"description: " + b"x" * 2_000_000 + b"\n",
            "long": head + b"description: " + b"x" * 990_000 + b"\n",
            "laughs": LAUGHS.encode() + head + b"  parameters: {anything: *a9}\n",
            "laughs in a list": LAUGHS.encode() + head + b"  parameters: {names: *a9}\n",
            "laughs everywhere": LAUGHS.encode() + b"extends: base.yaml\nname: fuzz\ndescription: *a9\ngates: *a9\n",
            }[kind]


# many aliases of aliases: a tiny file that stands for a huge structure
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
    for i in range(1, 10))
huge = st.sampled_from(["digits", "exponent", "too long", "long", "laughs", "laughs in a list", "laughs everywhere"])
huge_files = huge.map(huge_file)

pipeline_files = st.one_of(
    tweaked(), tweaked(), tweaked(),  # weighted: most cases get past the schema
    st.builds(dump, pipelines, styles),
    st.builds(dump, values, styles),
    mutated(),
    nesting,
    huge_files,
    st.binary(max_size=200),
)

# -- --params files and -p options -----------------------------------------------------------

params_data = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(["make", "use", "gone"]), keys, st.integers(), st.none()),
                    st.one_of(parameters, values),
                    max_size=3),
    values,
)
params_files = st.one_of(st.builds(dump, params_data, styles), nesting, st.binary(max_size=100), huge_files)
cli_values = st.one_of(text, st.builds(lambda v: json.dumps(v), values),
                       st.sampled_from(["yes", "null", "~", "017", "[32, a]", "{a: 1", "*x", "&a [1]", "!!binary x",
                                        "!!python/object:os.system x", "%YAML 1.1\n---\nyes", "9" * 50, "[" * 200]))
options = st.lists(st.builds(lambda s, p, v: f"{s}.{p}={v}", st.sampled_from(["make", "use", "gone", ""]),
                             st.sampled_from(["rows", "rate", "sizes", "weights", "names", "flag", "anything", "nested",
                                              "label", "x"]), cli_values), max_size=3)


OUTCOMES = ["not valid YAML", "too long", "nested too deeply", "surrogate", "cannot read", "a cycle", "extends:",
            "unknown key", "required key", "parameter", "notebook", "contract", "gate", "promote", "unknown step",
            "Input should", "a pipeline file is a mapping", "--params"]


def validate(project: Project, pipeline: bytes, params: bytes | None, pairs: list[str]) -> tuple[int, str, str]:
    """`kit validate` in this process; any exception other than the CLI's own exit fails the test."""
    path = project.root / "pipelines" / "fuzz.yaml"
    path.write_bytes(pipeline)
    argv = ["validate", str(path), *(f"--param={pair}" for pair in pairs)]
    if params is not None:
        params_path = project.root / "params.yaml"
        params_path.write_bytes(params)
        argv += ["--params", str(params_path)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing the command line: exit 2 with its usage message
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def check(code: int, out: str, err: str) -> None:
    event(f"exit {code}")  # how deep the cases got, in --hypothesis-show-statistics
    if code == 2:
        event("refused at: " + next((kind for kind in OUTCOMES if kind in err), "other"))
    assert code in (0, 2), (code, out, err)
    if code == 2:
        assert err.strip(), "exit 2 without a message"
    else:
        assert "OK" in out
    out.encode("utf-8")  # what stdout (strict) must be able to write; stderr escapes what it cannot


@settings(FUZZ, max_examples=100 * SCALE)
@given(pipeline=pipeline_files)
@example(pipeline=b"name: fuzz\nmodel: m\nsteps:\n- name: make\n  notebook: notebooks/make.ipynb\n")
def test_pipeline_files(project, pipeline):
    check(*validate(project, pipeline, None, []))


@settings(FUZZ, max_examples=60 * SCALE)
@given(params=params_files, pairs=options)
def test_params_files_and_options(project, params, pairs):
    project.pipeline(BASE, "fuzz-base.yaml")
    check(*validate(project, (project.root / "pipelines" / "fuzz-base.yaml").read_bytes(), params, pairs))


@settings(FUZZ, max_examples=3 * SCALE)
@given(pipeline=st.one_of(st.builds(dump, pipelines, styles), mutated()), pairs=options)
def test_the_real_kit_command(project, pipeline, pairs):
    """A few cases through the `kit` process itself: its streams, its encoding, its exit."""
    (project.root / "pipelines" / "fuzz.yaml").write_bytes(pipeline)
    done = project.kit("validate", "pipelines/fuzz.yaml", *(f"--param={pair}" for pair in pairs), timeout=120)
    assert done.returncode in (0, 2), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() if done.returncode == 2 else "OK" in done.stdout


# -- what the fuzzers found, each kept as a regression test ----------------------------------------

FOUND = {
    # a path holding a lone surrogate crashed the path check (UnicodeEncodeError in Path.resolve)
    "surrogate path": (b'{"extends": "\\ud800"}', "pipelines/fuzz.yaml:1: a lone surrogate escape"),
    # ... and one in a gate's name crashed `kit validate` printing the plan (stdout is strict UTF-8)
    "surrogate name": (b'extends: base.yaml\nname: fuzz\ngates:\n- {type: artifact_size, name: "\\udc80"}\n',
                       "pipelines/fuzz.yaml:4: a lone surrogate escape"),
    # a gate `type` that is a list crashed the gate registry lookup (unhashable)
    "gate type list": (b"extends: base.yaml\nname: fuzz\ngates:\n- type: [a]\n",
                       "pipelines/fuzz.yaml:4: gates.0: Value error, a gate needs a `type`"),
    # an integer of more than 4300 digits: ValueError from int() inside ruamel
    "long integer": (huge_file("digits"), "pipelines/fuzz.yaml: not a value we can read"),
    # deep [ { nesting: ruamel's scanner is quadratic in it (3000 levels took 17 s)
    "deep flow": (b"[" * 3000 + b"]" * 3000, "nested too deeply (3000 levels"),
    # a multi-megabyte file took seconds per megabyte to parse
    "too long": (huge_file("too long"), "too long to be a pipeline or parameter file"),
}


@pytest.mark.parametrize("case", list(FOUND))
def test_found_by_fuzzing(project, case):
    import time

    text, expected = FOUND[case]
    started = time.monotonic()
    code, out, err = validate(project, text, None, [])
    assert code == 2 and expected in err, err
    assert time.monotonic() - started < 5


def test_found_by_fuzzing_in_the_real_process(project):
    """The surrogate reached stdout only in a real process (a StringIO takes anything)."""
    text, expected = FOUND["surrogate name"]
    (project.root / "pipelines" / "fuzz.yaml").write_bytes(text)
    done = project.kit("validate", "pipelines/fuzz.yaml", timeout=120)
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr
