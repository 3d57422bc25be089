"""Reusing a passed gate's measurement (kit.gates.reuse): what is in the key, what is kept, and
that a damaged entry is measured again. The real thing in `kit run` is in
tests/examples/test_ctr_e2e.py (a re-run of the CTR pipeline reuses its Node and server gates)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from kit.gates import Champion, Evaluation, GateContext, GateResult, StepOutput, evaluate_all
from kit.gates import reuse
from kit.gates.base import Gate
from kit.gates.regression import NoRegression
from kit.gates.scorers import ModelFiles


class Counted(Gate):
    """Passes when the number in `rows` is at most `limit`; counts its measurements."""

    type: ClassVar[str] = "counted"
    reuse: ClassVar[str | None] = "pure"
    rows: StepOutput
    limit: float = 10.0
    measured: ClassVar[list] = []

    def evaluate(self, context: GateContext) -> GateResult:
        type(self).measured.append(self.label)
        value = float(self.rows.path(context).read_text())
        return GateResult(self.label, self.type, value <= self.limit, value, f"<= {self.limit}", f"{value} measured",
                          {"samples": [value]})


class Timed(Counted):
    type: ClassVar[str] = "timed"
    reuse: ClassVar[str | None] = "measured"


class Always(Counted):
    type: ClassVar[str] = "always"
    reuse: ClassVar[str | None] = None


@pytest.fixture(autouse=True)
def fresh_counts():
    Counted.measured = []


def context(tmp_path: Path, value: str = "3", memo=True, run_id: str = "run1", **extra) -> GateContext:
    rows = tmp_path / "rows.txt"
    if not rows.exists() or rows.read_text() != value:
        rows.write_text(value)
    memo = reuse.Memo(tmp_path / "gates", run_id, {"lock": "L", "kit": "1"}) if memo else None
    return GateContext(model_name="m", alias=None, outputs={"s": {"rows": rows}}, metrics=lambda step: {},
                       champion=None, candidate=None, memo=memo, **extra)


ROWS = {"rows": {"step": "s", "output": "rows"}}


def test_a_passed_result_is_reused_by_a_run_with_the_same_inputs(tmp_path):
    gate = Counted.model_validate(ROWS)
    first = evaluate_all([gate], context(tmp_path, run_id="run1"))[0]
    second = evaluate_all([gate], context(tmp_path, run_id="run2"))[0]
    assert Counted.measured == ["counted"]  # measured once
    assert first.passed and second.passed and second.figure == first.figure == 3.0
    assert second.detail == "reused from run run1 (same inputs and settings): 3.0 measured"
    assert second.evidence == {"samples": [3.0], "reused_from_run": "run1"}
    assert second.threshold == first.threshold


@pytest.mark.parametrize("change", ["content", "config", "name", "environment"])
def test_each_part_of_the_key_measures_again(tmp_path, change):
    gate = Counted.model_validate(ROWS)
    evaluate_all([gate], context(tmp_path))
    again = context(tmp_path, value="4" if change == "content" else "3")
    if change == "config":
        gate = Counted.model_validate({**ROWS, "limit": 9.0})
    if change == "name":
        gate = Counted.model_validate({**ROWS, "name": "other"})
    if change == "environment":
        again.memo.environment = {"lock": "a newer lock", "kit": "1"}
    result = evaluate_all([gate], again)[0]
    assert len(Counted.measured) == 2 and "reused" not in result.detail


def test_a_failed_result_is_measured_again(tmp_path):
    gate = Counted.model_validate({**ROWS, "limit": 1.0})
    for _ in range(2):
        assert not evaluate_all([gate], context(tmp_path))[0].passed
    assert len(Counted.measured) == 2


def test_a_measured_gate_is_measured_again_on_another_machine(tmp_path, monkeypatch):
    gate = Timed.model_validate(ROWS)
    evaluate_all([gate], context(tmp_path))
    again = evaluate_all([gate], context(tmp_path))[0]
    assert len(Counted.measured) == 1 and "(same inputs, settings and machine)" in again.detail
    monkeypatch.setattr(reuse, "machine", lambda: {"node": "ci-runner-7", "cores": 64})
    evaluate_all([gate], context(tmp_path))
    assert len(Counted.measured) == 2


def test_gates_without_reuse_and_runs_without_a_memo_always_measure(tmp_path):
    evaluate_all([Always.model_validate(ROWS)], context(tmp_path))
    evaluate_all([Always.model_validate(ROWS)], context(tmp_path))
    evaluate_all([Counted.model_validate(ROWS)], context(tmp_path, memo=False))
    evaluate_all([Counted.model_validate(ROWS)], context(tmp_path, memo=False))
    assert Counted.measured == ["always", "always", "counted", "counted"]
    assert not (tmp_path / "gates").exists()


@pytest.mark.parametrize("damage", ["garbage", "other key", "truncated"])
def test_a_damaged_entry_is_measured_again_and_replaced(tmp_path, damage):
    gate = Counted.model_validate(ROWS)
    evaluate_all([gate], context(tmp_path))
    entry = next((tmp_path / "gates").glob("*.json"))
    text = entry.read_text()
    entry.write_text({"garbage": "not json {", "other key": text.replace(entry.stem, "0" * 64),
                      "truncated": text[: len(text) // 2]}[damage])
    result = evaluate_all([gate], context(tmp_path))[0]
    assert result.passed and "reused" not in result.detail and len(Counted.measured) == 2
    assert "reused" in evaluate_all([gate], context(tmp_path))[0].detail  # the entry was written whole again


def test_a_missing_input_is_not_reused(tmp_path):
    gate = Counted.model_validate({"rows": {"step": "s", "output": "nothing"}})
    ctx = context(tmp_path)
    assert ctx.memo.key(gate, ctx) is None


def regression_context(tmp_path: Path, champion: Champion, recorded: float = 0.3) -> GateContext:
    for name in ("candidate.json", "rows.parquet"):
        (tmp_path / name).write_text(name)
    return GateContext(model_name="m", alias="champion", outputs={}, metrics=lambda step: {"log_loss": recorded},
                       champion=champion, candidate=None, champions={"champion": champion},
                       evaluations={"evaluate": Evaluation(tmp_path / "rows.parquet", "click", "log_loss")},
                       candidates={"champion": ModelFiles(tmp_path / "candidate.json")},
                       memo=reuse.Memo(tmp_path / "gates", "run1", {}))


def test_no_regression_is_keyed_on_what_the_champion_is_not_its_version_number(tmp_path):
    gate = NoRegression(step="evaluate", metric="log_loss", direction="lower_is_better")
    same_files = ["sha-of-bundle", "sha-of-spec", None]

    def key(version, identity, recorded=0.3):
        ctx = regression_context(tmp_path, Champion(version, {}, identity=identity), recorded)
        return ctx.memo.key(gate, ctx)

    # v3 registered again from the same files as v1: the same baseline, the same re-scores
    assert key("1", same_files) == key("3", same_files)
    assert key("1", same_files) != key("1", ["sha-of-another-bundle", "sha-of-spec", None])
    assert key("1", same_files) != key("1", same_files, recorded=0.31)  # the candidate's own figure is evidence
    # a version registered without content hashes is only ever itself
    assert key("1", None) != key("3", None)
    ctx = GateContext(model_name="m", alias="champion", outputs={}, metrics=lambda step: {}, champion=None,
                      candidate=None, memo=reuse.Memo(tmp_path / "gates", "run1", {}))
    assert ctx.memo.key(gate, ctx) is None  # no champion: nothing to re-score, nothing to reuse
