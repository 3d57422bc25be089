"""The pipeline file: schema, loading (with `extends`), parameter checks and step order."""

from kit.pipeline.loader import Pipeline, Step, load
from kit.pipeline.overrides import Overrides, load_params_file, parse_overrides

__all__ = ["Overrides", "Pipeline", "Step", "load", "load_params_file", "parse_overrides"]
