"""Model gates: the protocol, the registry of gate types, and evaluating a pipeline's gates."""

from kit.gates.base import Champion, Evaluation, Gate, GateContext, GateResult, StepOutput
from kit.gates.registry import known, parse, register

__all__ = ["Champion", "Evaluation", "Gate", "GateContext", "GateResult", "StepOutput", "evaluate_all", "known", "parse", "register"]


def evaluate_all(gates: list[Gate], context: GateContext) -> list[GateResult]:
    """Every gate's result; a gate that crashes fails with the reason instead of stopping the others.
    A gate whose inputs are those of an earlier passed result is judged from it (kit.gates.reuse)."""
    import time

    from kit.checkpoint import mark

    results = []
    for gate in gates:
        mark("gate", gate.label)
        started = time.perf_counter()
        key = None
        try:
            key = context.memo.key(gate, context) if context.memo is not None else None
            result = (key and context.memo.find(key, gate)) or gate.evaluate(context)
        except Exception as exc:  # a gate bug must block promotion, not crash the run
            result = GateResult(gate.label, gate.type, False, None, "", f"the gate raised {type(exc).__name__}: {exc}")
        if key and "reused_from_run" not in result.evidence:
            context.memo.keep(key, result)
        result.seconds = round(time.perf_counter() - started, 3)
        results.append(result)
    return results
