"""One scoring worker process: loads an MLflow model with `mlflow.pyfunc.load_model` and scores
batches of requests the front hands it over a pipe (pool.py starts it and feeds it).

A batch is a list of (content type, body) requests; the answer is a list of (status, body,
content type), one per request, in order. Requests whose body is `dataframe_records` (with no
`params`) are scored in ONE call of the model, as if one client had sent all their rows; the
rest are scored one by one with MLflow's own scoring function (`invocations`), so every
request format and error MLflow's scoring server knows behaves the same here. If the merged
call fails, its requests are scored one by one, so a bad row fails only its own request.

A kit cloud model (`kit.cloud`, the CTR and Iris examples' cloud target) is called through its
own row interface (`CloudModel.predict_records`), lone requests too: the same answers, byte for
byte, without MLflow's JSON -> DataFrame -> JSON round trip, which cost ten times the model
(CTR: one row 1.2 ms against 0.12 ms; 4 rows 1.5 against 0.19 ms). Any other MLflow model goes
through MLflow's parsing and `predict`, as its scoring server would.
"""

from __future__ import annotations

import json
import os
import sys

JSON = "application/json"


class Scorer:
    """A loaded pyfunc model and how to score a batch of raw requests on it."""

    def __init__(self, model_uri: str):
        from mlflow.pyfunc import load_model

        self.model = load_model(model_uri)
        self.input_schema = self.model.metadata.get_input_schema()
        self.score_records = _records_scorer(self.model)

    def score_batch(self, requests: list[tuple[str, bytes]]) -> list[tuple[int, bytes, str]]:
        answers: list = [None] * len(requests)
        merged: list[tuple[int, list]] = []  # (request index, its records)
        for index, (content_type, body) in enumerate(requests):
            records = _records(content_type, body)
            if records is None:
                answers[index] = self.score_one(content_type, body)
            else:
                merged.append((index, records))
        if len(merged) == 1 and self.score_records is None:
            index, _ = merged[0]
            answers[index] = self.score_one(*requests[index])
        elif merged:
            try:
                for (index, _), answer in zip(merged, self._score_merged([r for _, r in merged])):
                    answers[index] = answer
            except Exception:  # one bad request spoils the merged call: find it by scoring each alone
                for index, _ in merged:
                    answers[index] = self.score_one(*requests[index])
        return answers

    def _score_merged(self, per_request: list[list]) -> list[tuple[int, bytes, str]]:
        from mlflow.pyfunc.scoring_server import infer_and_parse_data
        from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj

        rows = [row for records in per_request for row in records]
        if self.score_records is not None:
            jsonable = self.score_records(rows)
        else:
            predictions = self.model.predict(infer_and_parse_data({"dataframe_records": rows}, self.input_schema))
            # Made JSON-able once for the whole batch, as MLflow's predictions_to_json does for
            # one request, then cut per request: converting each request's slice of a DataFrame
            # costs ~0.8 ms a request, more than the model call it shares.
            jsonable = _get_jsonable_obj(predictions, pandas_orient="records")
        if len(jsonable) != len(rows):
            raise ValueError(f"{len(jsonable)} predictions for {len(rows)} rows")
        answers, start = [], 0
        for records in per_request:
            part = jsonable[start:start + len(records)]
            start += len(records)
            answers.append((200, json.dumps({"predictions": part}, cls=NumpyEncoder).encode(), JSON))
        return answers

    def score_one(self, content_type: str, body: bytes) -> tuple[int, bytes, str]:
        """One request exactly as MLflow's scoring server answers it."""
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import invocations

        try:
            result = invocations(body, content_type, self.model, self.input_schema)
            return result.status, result.response.encode(), result.mimetype
        except MlflowException as error:
            return error.get_http_status_code(), error.serialize_as_json().encode(), JSON
        except Exception as error:  # the body could not be read as the model's input
            message = f"cannot score this request: {type(error).__name__}: {error}"
            return 400, json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode(), JSON


def _records_scorer(model):
    """A kit cloud model's own scoring of JSON rows (CloudModel.predict_records: the same answers
    as through MLflow's DataFrame path, for a fifth of the cost), or None for any other model."""
    from kit.targets.cloud.pyfunc import CloudModel

    implementation = getattr(model, "_model_impl", None)  # MLflow: "a stable developer API"
    return implementation.predict_records if isinstance(implementation, CloudModel) else None


def _records(content_type: str, body: bytes) -> list | None:
    """The rows of a plain `{"dataframe_records": [...]}` JSON request (mergeable), else None."""
    mime, *parameters = [part.strip().lower() for part in content_type.split(";")]
    if mime != JSON or any(p.replace(" ", "") != "charset=utf-8" for p in parameters):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or list(data) != ["dataframe_records"]:
        return None
    records = data["dataframe_records"]
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        return None
    return records


def main() -> None:
    """`python -m kit.targets.cloud.worker MODEL_URI IN_FD OUT_FD`: batches arrive on IN_FD,
    answers leave on OUT_FD (multiprocessing frames). It ends when the front closes its end of
    the pipe, or dies (the pipe closes then too): no worker outlives its front."""
    from multiprocessing.connection import Connection

    from kit.heap import freeze_startup_objects

    inbox, outbox = Connection(int(sys.argv[2]), writable=False), Connection(int(sys.argv[3]), readable=False)
    try:
        scorer = Scorer(sys.argv[1])
    except BaseException as error:  # reported to the front, which says why the version did not start
        outbox.send(("failed", f"{type(error).__name__}: {error}"))
        return
    freeze_startup_objects()
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            batch = inbox.recv()
        except (EOFError, OSError):
            return
        outbox.send(scorer.score_batch(batch))


if __name__ == "__main__":
    main()
