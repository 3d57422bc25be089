"""`kit sweep`: the pipeline run once per variant of some parameters, each variant a nested run
under one sweep run, the best through the gates and promotion.

- settings: `--grid` options and the `sweep:` block, checked as `-p` values are
- search: which variants (the whole grid, a seeded sample, Optuna ask-and-tell)
- variant: `run_variant`, one variant through the runner `kit run` uses
- driver: the sweep run, variants in parallel, interrupts, promotion of the best
- table: the table of variants, its CSV/HTML and plots
"""

__all__ = ["run_variant", "sweep"]


def __getattr__(name: str):
    # Lazy, like kit.run: the driver imports the runner (papermill, jupyter_client).
    if name == "sweep":
        from kit.run.sweep.driver import sweep

        return sweep
    if name == "run_variant":
        from kit.run.sweep.variant import run_variant

        return run_variant
    raise AttributeError(f"module 'kit.run.sweep' has no attribute {name!r}")
