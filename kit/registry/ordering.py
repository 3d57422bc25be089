"""What a sequence of requested alias moves means: the pure rule every kit process applies
to the audit log, in the order the server assigned, to learn who holds an alias and which
moves took effect. No MLflow here (unit-tested with plain lists).

Why this is enough for consistency without a shared disk (the log itself is kept by
kit/registry/audit.py, the alias written by kit/registry/promote.py):

1. Order. A move is first appended as a request: a new version of the model's hidden
   audit model. The server numbers it (`max + 1` inside one database transaction, the
   primary key (name, version) refusing a duplicate, a number never reused), so the
   numbers are a server-side sequence, and every process reads the same order. A number
   is only computed from a committed maximum, so when a process sees request N, every
   request before N that will ever exist is already visible: the log only grows at its end.
2. Meaning. A request records what was asked (promote vX, or roll back; optionally
   "only if the holder is vY"), never a from-version. The from-version is derived by
   replaying the requests before it (`replay`), so no event can record a from-version that
   was not the holder at its place in the order, and a compare-and-set whose expected
   holder is not the derived one is refused, by every reader alike.
3. The alias follows the log. After appending, a process writes the alias to the holder the
   whole log implies and re-reads the log until it did not change under that write; any
   later request's own process writes after it, so the last alias write agrees with the
   head. A process killed between append and alias write leaves the alias behind the head,
   at a holder some prefix of the log implied (`State.former`): the next move, `kit models`,
   `promote` or `rollback` writes it forward (an alias at a version no prefix implies was
   moved outside kit: reported, not overwritten).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANY = "*"  # a request's `expected`: whoever holds the alias (a person's `kit promote`, a rollback)


@dataclass(frozen=True)
class Request:
    number: int  # the server-assigned position
    attempt: str  # unique per move; a request sent twice (a retried HTTP call) counts once
    action: str  # promote | rollback
    to_version: str | None  # promote: the version asked for; rollback: None (the one before)
    expected: str = ANY  # ANY, "" (no holder), or the version that must hold the alias


@dataclass(frozen=True)
class Decision:
    request: Request
    applied: bool
    from_version: str | None  # the holder when this request's turn came
    to_version: str | None  # the holder it left (applied), or the one it asked for (refused)
    refused: str = ""  # why not, in words
    seq: int = 0  # 1, 2, ... over the applied moves of this alias


@dataclass
class State:
    stack: list[str] = field(default_factory=list)  # a promotion pushes, a rollback pops
    decisions: list[Decision] = field(default_factory=list)
    former: set[str | None] = field(default_factory=lambda: {None})  # every holder some prefix implied

    @property
    def holder(self) -> str | None:
        return self.stack[-1] if self.stack else None

    def decision(self, attempt: str) -> Decision | None:
        return next((d for d in self.decisions if d.request.attempt == attempt), None)


def replay(requests: list[Request], stack: list[str] | None = None) -> State:
    """Decide every request in server order, starting from `stack` (the holders before the log)."""
    state = State(stack=list(stack or []))
    state.former.update(state.stack[-1:])
    seen: set[str] = set()
    applied = 0
    for request in sorted(requests, key=lambda r: r.number):
        if request.attempt in seen:
            continue
        seen.add(request.attempt)
        current = state.holder
        refused = _refusal(request, current, state.stack)
        if refused:
            state.decisions.append(Decision(request, False, current, request.to_version, refused))
            continue
        if request.action == "rollback":
            state.stack.pop()
        else:
            state.stack.append(request.to_version)
        applied += 1
        state.former.add(state.holder)
        state.decisions.append(Decision(request, True, current, state.holder, seq=applied))
    return state


def _refusal(request: Request, current: str | None, stack: list[str]) -> str:
    if request.expected != ANY and (request.expected or None) != current:
        return f"held by {_shown(current)}, not {_shown(request.expected or None)} as expected"
    if request.action == "rollback":
        return "" if len(stack) >= 2 else "nothing to roll back to"
    return f"already {_shown(current)}" if request.to_version == current else ""


def _shown(version: str | None) -> str:
    return f"v{version}" if version else "(none)"
