"""`kit run --junit FILE`: the run as JUnit XML, which CI systems show as test results.

One test case per step, per contract check and per gate (classnames `PIPELINE.steps`,
`PIPELINE.contracts`, `PIPELINE.gates`): a failure carries the message, a step that did not run
is skipped, and so is a check or gate that never got to judge. An ending none of those explain
(a refused registration, a bad pipeline file, an interrupt) is one more case, `PIPELINE.run`, so
the file fails whenever `kit run` does. Written with junitparser (a maintained library that
writes and reads the format) rather than by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

# Characters XML 1.0 cannot hold (a traceback's terminal colours among them).
_NOT_XML = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write(path: Path, name: str, plan=None, result=None, error: BaseException | None = None) -> Path:
    """Write the report of a run of pipeline `name`: its plan and result as far as they got, and the
    error it ended with (None: it passed)."""
    suite = TestSuite(f"kit run {name}")
    cases = []
    if plan is not None and result is not None:
        cases += _steps(name, result)
        cases += _contracts(name, plan, result)
        cases += _gates(name, plan, result, error)
    if error is not None and not any(_failed(case) for case in cases):
        cases.append(_case(f"{name}.run", "kit run", None, Error(_clean(_first_line(str(error)))), str(error)))
    for case in cases:
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)
    return path


def _steps(name: str, result) -> list[TestCase]:
    cases = []
    for step in result.steps.values():
        outcome = {"failed": Failure, "killed": Error, "skipped": Skipped}.get(step.state)
        first = _first_line(step.error)
        cases.append(_case(f"{name}.steps", step.name, step.duration,
                           outcome(_clean(first)) if outcome else None, step.error))
    return cases


def _contracts(name: str, plan, result) -> list[TestCase]:
    from kit.contracts.report import text_table

    cases = []
    for (step, param), contract in plan.contracts.items():
        step_result = result.steps.get(step)
        checked = next((c for _, p, c in (step_result.checks if step_result else []) if p == param), None)
        label = f"{step}.{param} ({contract.name})"
        if checked is None:
            state = step_result.state if step_result else "not started"
            cases.append(_case(f"{name}.contracts", label, None, Skipped(f"not checked: step {step!r} {state}")))
        elif checked.success:
            cases.append(_case(f"{name}.contracts", label, checked.seconds))
        else:
            failed = checked.failed
            columns = sorted({o.column for o in failed if o.column})
            message = (f"{len(failed)} of {len(checked.outcomes)} expectations failed"
                       + (f" (columns {', '.join(columns)})" if columns else ""))
            cases.append(_case(f"{name}.contracts", label, checked.seconds, Failure(message), text_table(checked)))
    return cases


def _gates(name: str, plan, result, error: BaseException | None) -> list[TestCase]:
    outcome = result.promotion
    if outcome is None:
        why = ("a step failed" if result.failed else
               f"the run ended first: {_first_line(str(error))}" if error is not None else "the run ended first")
        return [_case(f"{name}.gates", gate.label, None, Skipped(_clean(f"not evaluated: {why}"))) for gate in plan.gates]
    cases = []
    for gate in outcome.results:
        figure = "" if gate.figure is None else f"{gate.figure:.6g}"
        text = f"figure {figure or '-'}, threshold {gate.threshold or '-'}: {gate.detail}"
        cases.append(_case(f"{name}.gates", gate.name, gate.seconds, None if gate.passed else Failure(_clean(text)), text))
    return cases


def _case(classname: str, name: str, seconds: float | None, outcome=None, text: str | None = None) -> TestCase:
    case = TestCase(name, classname, round(seconds, 3) if seconds is not None else None)
    if outcome is not None:
        if text and not isinstance(outcome, Skipped):
            outcome.text = _clean(text)
        case.result = [outcome]
    return case


def _failed(case: TestCase) -> bool:
    return any(isinstance(outcome, (Failure, Error)) for outcome in case.result)


def _first_line(text: str | None) -> str:
    return next((line for line in (text or "").splitlines() if line.strip()), "")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)
