"""Example data and helpers for the example pipelines (synthetic ad-impression logs for CTR)."""
