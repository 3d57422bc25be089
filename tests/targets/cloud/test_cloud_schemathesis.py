"""Schemathesis against the real cloud server (real worker processes, a real MLflow model), from
the OpenAPI description it publishes: zero 5xx, zero crashes, every 4xx with a JSON body.
Seeded (derandomized) and bounded: EXAMPLES generated cases per operation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from kit.targets.cloud.front import Front, InThread

EXAMPLES = 40
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    folder = tmp_path_factory.mktemp("model") / "linear"
    mlflow.sklearn.save_model(LinearRegression().fit(frame, frame.a + frame.b), str(folder), pip_requirements=[])
    root = tmp_path_factory.mktemp("fuzz")
    front = Front(root, "linear", "fuzz", port=0, log_dir=root / "log", model_uri=str(folder), workers=1)
    with InThread(front) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    assert front.metrics.errors.labels("500")._value.get() == 0


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_5xx_and_4xx_in_json(case):
    response = case.call(timeout=60)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500:
        content_type = response.headers["content-type"]  # schemathesis keeps each header's values in a list
        assert (content_type[0] if isinstance(content_type, list) else content_type).startswith("application/json")
        assert isinstance(json.loads(response.text), dict)
