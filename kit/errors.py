"""One exception family; each kind maps to the exit code the CLI returns."""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit reports to a user (never shown as a traceback)."""

    exit_code = 1


class SpecError(KitError):
    """The pipeline file, a notebook's parameters cell or a parameter value is wrong."""

    exit_code = 2


class GateFailure(KitError):
    """A data contract or a model gate did not pass."""

    exit_code = 3


class StepFailure(KitError):
    """A step crashed: a cell raised, the kernel died, or the step timed out."""

    exit_code = 1


class Interrupted(KitError):
    """The run was stopped by Ctrl-C (exit 130) or SIGTERM (exit 143)."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number
