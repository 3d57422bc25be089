# The commands a newcomer needs. Every target sets up first (fast when already done).
.PHONY: setup example test lab ui bench docs

setup:
	@scripts/setup

example: setup
	.venv/bin/kit run pipelines/iris.yaml

test: setup
	@scripts/setup-system
	.venv/bin/pytest

lab: setup
	.venv/bin/jupyter lab --allow-root --no-browser --LabApp.extension_manager=readonly --LabApp.default_url=/lab/tree/notebooks .

ui: setup
	.venv/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port 5000

bench: setup
	.venv/bin/python benchmarks/runner_overhead.py

docs: setup
	.venv/bin/mkdocs build --strict --site-dir site
