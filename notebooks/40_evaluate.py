# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (kit)
#     language: python
#     name: kit
# ---

# %% [markdown]
# # 40 · Evaluate (step `evaluate`)
#
# Scores the trained model on the held-out test split: accuracy, log loss, a confusion
# matrix and a per-class precision/recall/F1 report.
#
# - **Reads:** `test_path` (Parquet), `spec_path` (the feature spec), `stats_path` (labels; JSON), `model_path` (Keras `.keras` file).
# - **Writes:** `metrics_path` (JSON: `accuracy`, `log_loss`, `n_test`, `per_class`).
# - **Logs to MLflow:** metrics `accuracy`, `log_loss`, `precision_<label>`, `recall_<label>`,
#   `f1_<label>`; figure `confusion_matrix.png`; artifact `classification_report.json`.

# %% tags=["parameters"]
test_path = "../build/iris/test.parquet"  # input: test split (Parquet)
stats_path = "../build/iris/standardization.json"  # input: labels and target column (JSON)
spec_path = "../build/iris/feature_spec.json"  # input: the feature spec (preprocessing)
model_path = "../build/iris/model.keras"  # input: trained Keras model
metrics_path = "../build/iris/metrics.json"  # output: evaluation metrics (JSON)

# %%
import json
import os
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # quiet TensorFlow's C++ logs

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import keras
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    log_loss,
)

import kit
from kit.features import load_spec

run = kit.track()

# %% [markdown]
# ## Load test split, statistics and model

# %%
stats = json.loads(Path(stats_path).read_text())
features, labels = stats["features"], stats["labels"]
test_df = pd.read_parquet(test_path)
model = keras.models.load_model(model_path)

spec = load_spec(spec_path)  # the same preprocessing the edge runtime applies
x = spec.transform(test_df[spec.input_names]).astype("float32")
y = test_df[stats["target"]].map(labels.index).to_numpy(dtype="int64")
print(f"test rows: {len(test_df)}")

# %% [markdown]
# ## Accuracy and log loss

# %%
proba = model.predict(x, verbose=0).astype("float64")
proba /= proba.sum(axis=1, keepdims=True)  # float32 softmax rows may miss 1.0 by rounding
y_pred = proba.argmax(axis=1)

accuracy = float(accuracy_score(y, y_pred))
loss = float(log_loss(y, proba, labels=list(range(len(labels)))))
mlflow.log_metrics({"accuracy": accuracy, "log_loss": loss})
print(f"accuracy {accuracy:.4f}  log loss {loss:.4f}")

# %% [markdown]
# ## Confusion matrix

# %%
fig, ax = plt.subplots(figsize=(5, 4.5))
ConfusionMatrixDisplay.from_predictions(
    y, y_pred, labels=list(range(len(labels))), display_labels=labels, ax=ax, colorbar=False
)
ax.set_title("Confusion matrix (test split)")
fig.tight_layout()
mlflow.log_figure(fig, "confusion_matrix.png")
plt.close(fig)

# %% [markdown]
# ## Per-class report and metrics file

# %%
report = classification_report(
    y,
    y_pred,
    labels=list(range(len(labels))),
    target_names=labels,
    output_dict=True,
    zero_division=0,
)
mlflow.log_dict(report, "classification_report.json")

per_class = {}
for label in labels:
    row = report[label]
    per_class[label] = {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1": float(row["f1-score"]),
        "support": int(row["support"]),
    }
    mlflow.log_metrics(
        {
            f"precision_{label}": per_class[label]["precision"],
            f"recall_{label}": per_class[label]["recall"],
            f"f1_{label}": per_class[label]["f1"],
        }
    )

metrics = {"accuracy": accuracy, "log_loss": loss, "n_test": int(len(test_df)), "per_class": per_class}
Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
Path(metrics_path).write_text(json.dumps(metrics, indent=2) + "\n")
print(f"wrote {metrics_path}")

# The report as a table ("accuracy" is a single number, so it is shown above, not here).
pd.DataFrame({k: v for k, v in report.items() if isinstance(v, dict)}).T.round(3)
