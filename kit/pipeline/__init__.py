"""The pipeline file: schema, loading, parameter checks and step order."""

from kit.pipeline.loader import Pipeline, Step, load, load_params_file, parse_overrides

__all__ = ["Pipeline", "Step", "load", "load_params_file", "parse_overrides"]
