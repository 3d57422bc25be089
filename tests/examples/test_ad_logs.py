"""Synthetic ad-impression logs (kit.examples.ad_logs): shape, statistics, drift, files, corruptions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kit.examples import ad_logs

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def logs() -> pd.DataFrame:
    return ad_logs.generate(200_000, seed=11)


def _logit(p):
    return np.log(p / (1 - p))


def _assert_same(a: pd.DataFrame, b: pd.DataFrame):
    """assert_frame_equal, fast for big frames (pandas 3 compares categoricals value by value)."""
    assert list(a.columns) == list(b.columns) and dict(a.dtypes) == dict(b.dtypes)
    codes = {c: a[c].cat.codes for c in a.columns if isinstance(a[c].dtype, pd.CategoricalDtype)}
    pd.testing.assert_frame_equal(a.assign(**codes), b.assign(**{c: b[c].cat.codes for c in codes}))


def test_same_seed_same_frame_and_declared_dtypes():
    a = ad_logs.generate(5_000, seed=7)
    pd.testing.assert_frame_equal(a, ad_logs.generate(5_000, seed=7))
    assert not a.equals(ad_logs.generate(5_000, seed=8))
    assert list(a.columns) == list(ad_logs.COLUMNS)
    assert dict(a.dtypes) == ad_logs.DTYPES
    empty = ad_logs.generate(0)
    assert len(empty) == 0 and dict(empty.dtypes) == ad_logs.DTYPES


def test_bad_arguments_are_refused():
    for kwargs in ({"rows": -1}, {"rows": 2.5}, {"days": 0}, {"drift": -1.0}, {"drift": float("nan")}):
        with pytest.raises(ValueError):
            ad_logs.generate(**{"rows": 10, **kwargs})


def test_overall_ctr_is_a_few_percent(logs):
    assert 0.02 <= logs["click"].mean() <= 0.05
    assert set(np.unique(logs["click"])) == {0, 1}


def test_missing_values_only_where_designed(logs):
    missing = logs.isna().mean()
    assert 0.06 <= missing["user_ctr_7d"] <= 0.10
    assert 0.02 <= missing["session_depth"] <= 0.07
    assert 0.03 <= missing["time_on_site_s"] <= 0.10
    assert missing[list(ad_logs.REQUIRED)].sum() == 0


def test_values_ranges_and_cardinalities(logs):
    n = len(logs)
    assert 1_000 <= logs["creative_id"].nunique() <= 9_999
    assert 0.7 * n / 20 <= logs["user_id"].nunique() <= 1.1 * n / 20
    assert 100 <= logs["site_id"].nunique() <= 999 and 100 <= logs["advertiser_id"].nunique() <= 999
    assert 15 <= logs["country"].nunique() <= 25
    assert logs["country"].value_counts(normalize=True).iloc[0] > 0.15          # skewed
    assert logs["creative_id"].value_counts().iloc[0] > 20 * logs["creative_id"].value_counts().median()  # Zipf-like
    assert logs.groupby("creative_id")["advertiser_id"].nunique().max() == 1    # one advertiser per creative
    for name, values in ad_logs.CATEGORIES.items():
        assert set(logs[name].unique()) <= set(values)
    assert set(logs["placement"].unique()) == set(ad_logs.CATEGORIES["placement"])
    assert (logs["bid_floor"] > 0).all()
    depth = logs["session_depth"].dropna()
    assert (depth >= 1).all() and (depth == np.floor(depth)).all()
    assert logs["time_on_site_s"].max() > 20 * logs["time_on_site_s"].median()  # heavy tail
    assert logs["user_ctr_7d"].dropna().between(0, 1).all()


def test_time_columns_and_daily_curve(logs):
    ts = logs["timestamp"]
    assert ts.is_monotonic_increasing
    assert ts.min() >= pd.Timestamp("2026-10-01") and ts.max() < pd.Timestamp("2026-10-15")
    assert ts.dt.normalize().nunique() == 14
    assert (logs["hour"] == ts.dt.hour).all() and (logs["weekday"] == ts.dt.day_of_week).all()
    by_hour = logs.groupby("hour").size()
    assert by_hour.loc[18:22].mean() > 1.3 * by_hour.loc[8:16].mean() > 2 * by_hour.loc[1:4].mean()
    short = ad_logs.generate(2_000, seed=1, start="2027-01-05", days=3)
    assert short["timestamp"].min() >= pd.Timestamp("2027-01-05")
    assert short["timestamp"].max() < pd.Timestamp("2027-01-08")


def test_clicks_depend_on_placement_by_device_interaction(logs):
    ctr = logs.groupby(["device", "placement"], observed=True)["click"].mean().unstack()
    lo = _logit(ctr)
    # interstitial vs sidebar: a big gain on phones, a loss on desktops; no interaction would give ~0
    contrast = (lo.loc["mobile", "interstitial"] - lo.loc["mobile", "sidebar"]) \
        - (lo.loc["desktop", "interstitial"] - lo.loc["desktop", "sidebar"])
    assert contrast > 1.0
    # and overall: the two-way table is far from additive in log-odds
    residual = lo.sub(lo.mean(axis=1), axis=0).sub(lo.mean(axis=0), axis=1) + lo.to_numpy().mean()
    assert np.abs(residual.to_numpy()).max() > 0.3


def test_clicks_follow_user_history(logs):
    hist = logs.dropna(subset=["user_ctr_7d"])
    top = hist["user_ctr_7d"] >= hist["user_ctr_7d"].quantile(0.8)
    bottom = hist["user_ctr_7d"] <= hist["user_ctr_7d"].quantile(0.2)
    assert hist.loc[top, "click"].mean() > 2 * hist.loc[bottom, "click"].mean()


def _drift_stats(frame):
    day = (frame["timestamp"] - pd.Timestamp("2026-10-01")).dt.days
    first, last = frame[day < 2], frame[day >= 12]

    def mobile_vs_desktop(part):
        ctr = part.groupby("device", observed=True)["click"].mean()
        return _logit(ctr["mobile"]) - _logit(ctr["desktop"])

    return (mobile_vs_desktop(last) - mobile_vs_desktop(first),
            np.log(last["bid_floor"].median() / first["bid_floor"].median()))


def test_drift_moves_effects_between_first_and_last_days():
    drifting = ad_logs.generate(300_000, seed=5, drift=1.0)
    steady = ad_logs.generate(300_000, seed=5, drift=0.0)
    device_shift, bid_shift = _drift_stats(drifting)
    assert device_shift > 0.2 and bid_shift > 0.04                 # expected about 0.47 and 0.086
    device_shift, bid_shift = _drift_stats(steady)
    assert abs(device_shift) < 0.25 and abs(bid_shift) < 0.03
    # drift changes only bid floors and clicks; everything else is the same draw
    same = [c for c in ad_logs.COLUMNS if c not in ("bid_floor", "click")]
    _assert_same(drifting[same], steady[same])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_round_trips_and_equals_generate(tmp_path, suffix):
    frame = ad_logs.generate(3_000, seed=5, days=3)
    path = ad_logs.write(tmp_path / f"sub/logs{suffix}", rows=3_000, seed=5, days=3)
    assert path == tmp_path / f"sub/logs{suffix}" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]          # no partial file left
    pd.testing.assert_frame_equal(ad_logs.read(path), frame)
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(path), frame)     # no help needed
    else:
        plain = pd.read_csv(path)                                         # text, int64, float64: same values
        assert plain["device"].tolist() == frame["device"].astype(str).tolist()
        np.testing.assert_array_equal(plain["bid_floor"].astype(np.float32), frame["bid_floor"])
        assert (pd.to_datetime(plain["timestamp"]) == frame["timestamp"]).all()


def test_chunked_write_is_bounded_consistent_and_in_time_order(tmp_path):
    parquet = ad_logs.write(tmp_path / "logs.parquet", rows=2_500, seed=9, chunk_rows=1_000)
    csv = ad_logs.write(tmp_path / "logs.csv", rows=2_500, seed=9, chunk_rows=1_000)
    assert pq.ParquetFile(parquet).metadata.num_row_groups == 3
    frame = pd.read_parquet(parquet)
    assert len(frame) == 2_500 and dict(frame.dtypes) == ad_logs.DTYPES
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].dt.normalize().nunique() == 14
    assert frame.groupby("creative_id")["advertiser_id"].nunique().max() == 1   # one world for all chunks
    pd.testing.assert_frame_equal(ad_logs.read(csv), frame)
    # rows <= chunk_rows: exactly generate(rows)
    single = ad_logs.write(tmp_path / "one.parquet", rows=2_500, seed=9, chunk_rows=2_500)
    pd.testing.assert_frame_equal(pd.read_parquet(single), ad_logs.generate(2_500, seed=9))
    assert not frame.equals(pd.read_parquet(single))
    # the same chunking gives the same file
    again = ad_logs.write(tmp_path / "again.parquet", rows=2_500, seed=9, chunk_rows=1_000)
    pd.testing.assert_frame_equal(pd.read_parquet(again), frame)


def test_write_refuses_unknown_format_and_corruption(tmp_path):
    with pytest.raises(ValueError, match="format"):
        ad_logs.write(tmp_path / "logs.json", rows=10)
    with pytest.raises(ValueError, match="corruption"):
        ad_logs.write(tmp_path / "logs.csv", rows=10, corrupt="typos")
    assert list(tmp_path.iterdir()) == []


def test_corruptions_do_what_they_say():
    clean = ad_logs.generate(20_000, seed=2)
    before = clean.copy()

    nulls = ad_logs.corrupt(clean, "nulls")
    assert 0.25 < nulls["bid_floor"].isna().mean() < 0.35 and clean["bid_floor"].notna().all()

    drift = ad_logs.corrupt(clean, "drift")
    assert "smart_tv" in set(drift["device"].unique()) - set(ad_logs.CATEGORIES["device"])
    assert drift["bid_floor"].median() == pytest.approx(100 * clean["bid_floor"].median(), rel=1e-4)

    schema = ad_logs.corrupt(clean, "schema")
    assert "user_ctr_7d" not in schema and "user_ctr_7day" in schema and "ad_size" not in schema

    labels = ad_logs.corrupt(clean, "labels")
    bad = ~labels["click"].isin([0, 1])
    assert 0.01 < bad.mean() < 0.03 and set(labels.loc[bad, "click"]) == {-1, 2}
    assert (labels.loc[~bad, "click"] == clean.loc[~bad, "click"]).all()

    _assert_same(clean, before)                        # the input is left alone
    pd.testing.assert_frame_equal(ad_logs.corrupt(clean, "labels", seed=0), labels)
    with pytest.raises(ValueError, match="nulls"):
        ad_logs.corrupt(clean, "typos")


def test_cli_writes_a_corrupted_file(tmp_path):
    out = tmp_path / "bad.csv"
    done = subprocess.run([sys.executable, "-m", "kit.examples.ad_logs", "--rows", "2000", "--seed", "3",
                           "--out", str(out), "--corrupt", "drift"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    frame = ad_logs.read(out)
    pd.testing.assert_frame_equal(frame, ad_logs.corrupt(ad_logs.generate(2_000, seed=3), "drift", seed=3))
    assert "wrote 2000 rows" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "kit.examples.ad_logs", "--out", str(tmp_path / "x.txt"), "--rows", "5"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "format" in bad.stderr
