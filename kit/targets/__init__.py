"""Deployment targets. `kit.targets.edge`: TF.js / JSON-tree bundles for the JavaScript edge runtime.

Targets depend on `kit.features` and `kit.errors`; the core never imports a target directly.
"""
