"""One family of command outcomes (exit 2 bad input, 3 gate or contract failed, 1 step crashed),
library errors apart from it, and one mapping to exit codes in the CLI."""

from __future__ import annotations

import signal

import pytest

from kit.cli import exit_code
from kit.contracts import ContractError
from kit.errors import GateFailure, Interrupted, KitError, LibraryError, SpecError, StepFailure
from kit.features import FeatureSpecError, RowError
from kit.registry import RegistryError
from kit.targets.cloud.server import ScoringServerError
from kit.targets.edge import BundleError, BundleIntegrityError, ConversionError
from kit.targets.edge.lightgbm import LightgbmError
from kit.targets.edge.node import NodeError

FAMILIES = (SpecError, GateFailure, StepFailure, Interrupted)
LIBRARY = (FeatureSpecError, RowError, BundleError, BundleIntegrityError, ConversionError, LightgbmError, NodeError)


@pytest.mark.parametrize("error", LIBRARY, ids=lambda e: e.__name__)
def test_library_errors_are_not_command_outcomes(error):
    assert issubclass(error, LibraryError) and issubclass(error, KitError)
    assert not issubclass(error, FAMILIES)


@pytest.mark.parametrize(("error", "code"), [
    (SpecError("x"), 2), (ContractError("x"), 2), (RegistryError("x"), 2),
    (GateFailure("x"), 3),
    (StepFailure("x"), 1), (ScoringServerError("x"), 1),
    (BundleError("x"), 2), (RowError("f", "x"), 2), (FeatureSpecError("x"), 2), (ConversionError("x"), 2),
    (Interrupted("x", signal.SIGINT), 130), (Interrupted("x", signal.SIGTERM), 143),
    (KitError("x"), 1),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_the_cli_maps_each_error_to_its_exit_code(error, code):
    assert exit_code(error) == code
