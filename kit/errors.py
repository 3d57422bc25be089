"""The errors the kit reports to a user as one line, never as a traceback.

Two kinds, both under `KitError`:

- The command family says how a `kit` command ends, and the layer that knows which it is
  raises it: `SpecError` (bad input), `GateFailure` (a gate or contract failed),
  `StepFailure` (a step crashed), `Interrupted` (Ctrl-C / SIGTERM). `kit.cli.exit_code` maps
  them to exit codes, in that one place.
- `PermissionDenied`: the tracking server refused the authenticated user (403) or their
  credentials (401); `kit.store.refusal` turns MLflow's error into it, for every command.
- Library errors (`LibraryError`) are what the kit's libraries raise to their caller (a
  notebook, a script, a scoring server) when they refuse an input: a bad feature row or
  feature spec, a bad bundle, a failed conversion. They are not command outcomes: a bad HTTP
  row sent to the cloud model is not "a step crashed".
"""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit reports to a user (never shown as a traceback)."""


class SpecError(KitError):
    """Bad input to a command: the pipeline file, a parameter, a contract, a registry request."""


class GateFailure(KitError):
    """A data contract or a model gate did not pass."""


class StepFailure(KitError):
    """A step crashed: a cell raised, the kernel died, the step timed out, a tool failed."""


class PermissionDenied(KitError):
    """The tracking server refused the request: the user may not do it, or their credentials are wrong."""


class Interrupted(KitError):
    """The run was stopped by Ctrl-C or SIGTERM (by `signal_number`)."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


class LibraryError(KitError):
    """Base of the library errors: a library call refused its input; the message says what to fix."""
