"""Deployment targets, each a folder of its own: `edge` (TF.js / JSON-tree bundles for the
JavaScript edge runtime) and `cloud` (MLflow's scoring server behind the kit's front).

A target builds on the core (features, gates, registry, store) and plugs into it only through
entry points in pyproject.toml: its gates (`kit.gates`), `kit serve TARGET` (`kit.serve`) and
`kit deploy TARGET` (`kit.deploy`). The core never imports a target (import-linter contracts).
"""
