"""Synthetic ad-impression logs for the click-through-rate (CTR) example pipeline.

The generative story. A seed fixes a small ad "world": ~rows/20 users (each with a home
country, an age bucket, a primary device, an Apple-or-not ecosystem, a latent click
propensity and the noisy 7-day CTR a feature store would report for it), 400 sites (each
in a content category), 300 advertisers (each in a vertical) and 5,000 creatives, each
belonging to one advertiser and having a latent quality that fades or improves over time.
Impressions then arrive over `days` days following a daily traffic curve (quiet at night,
busiest in the evening, a little more at weekends) and are written in time order. Users,
sites and creatives are picked Zipf-like (a few are very busy, most are rare); a user
mostly uses their primary device; the device decides which placements are shown and the
placement (and device) the ad size; the placement, country and site set the bid floor.

A click is Bernoulli(sigmoid(logit)) where the logit adds main effects (placement,
device, country, age, bid floor, session depth, time on site, user propensity, creative
quality) and interactions: placement x device (interstitials work on phones, sidebars on
desktops), hour x country (engagement peaks in the *local* evening), creative quality x
site category and advertiser vertical x site category, age x placement, user propensity x
placement and session depth x device, plus unexplained noise; `user_ctr_7d` is a noisy view
of the user's propensity. On 1M rows LightGBM beats a logistic regression by about 1.5 AUC
points. The overall CTR is about 3% (2.5-3.5% depending on the seed). With `drift` > 0
some effects move gradually over the days: creatives fatigue (or catch on), mobile gains
and desktop loses baseline CTR, native feeds gain, and bid floors rise a little, so a model
trained on the first days is a bit worse on the last ones; `drift=0` keeps the world fixed
(and changes only `bid_floor` and `click`: every other column is the same draw).

Dtypes (memory-lean, about 65 bytes a row): `timestamp` datetime64[us]; `hour`, `weekday`
and `click` int8; ids int64; numeric context float32 with NaN for missing; text columns
pandas `category` with a fixed, complete category list (`CATEGORIES`, the same for every
seed, size and chunk). Parquet round-trips all of it exactly with a plain
`pandas.read_parquet`. CSV stores plain text, so a plain `pandas.read_csv` gives str,
int64, float64 and a text timestamp; `read(path)` (or `read_csv(path, dtype=CSV_DTYPES,
parse_dates=["timestamp"])`) restores the frame `generate` made.

    from kit.examples import ad_logs
    df = ad_logs.generate(200_000, seed=1)
    ad_logs.write("build/ctr/raw.parquet", rows=10_000_000, seed=1)   # chunked, bounded memory
    bad = ad_logs.corrupt(df, "drift")

    python -m kit.examples.ad_logs --rows 1000000 --seed 0 --out build/ctr/raw.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES: dict[str, tuple[str, ...]] = {
    "device": ("mobile", "desktop", "tablet"),
    "os": ("Android", "iOS", "iPadOS", "Windows", "macOS", "Linux", "ChromeOS"),
    "country": ("US", "IN", "GB", "DE", "BR", "FR", "JP", "CA", "MX", "ES",
                "IT", "AU", "ID", "TR", "KR", "NL", "PL", "NG", "SE", "ZA"),
    "age_bucket": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "placement": ("banner_top", "sidebar", "interstitial", "native_feed", "video_preroll"),
    "ad_size": ("320x50", "728x90", "300x250", "160x600", "320x480", "1024x768", "1200x628", "640x360"),
}
COLUMNS: tuple[str, ...] = (
    "timestamp", "hour", "weekday",
    "user_id", "device", "os", "country", "age_bucket",
    "site_id", "placement", "ad_size", "creative_id", "advertiser_id",
    "bid_floor", "user_ctr_7d", "session_depth", "time_on_site_s",
    "click",
)
DTYPES: dict[str, object] = {
    "timestamp": np.dtype("datetime64[us]"),
    "hour": np.dtype(np.int8), "weekday": np.dtype(np.int8),
    "user_id": np.dtype(np.int64),
    **{name: pd.CategoricalDtype(list(values)) for name, values in CATEGORIES.items()},
    "site_id": np.dtype(np.int64), "creative_id": np.dtype(np.int64), "advertiser_id": np.dtype(np.int64),
    "bid_floor": np.dtype(np.float32), "user_ctr_7d": np.dtype(np.float32),
    "session_depth": np.dtype(np.float32), "time_on_site_s": np.dtype(np.float32),
    "click": np.dtype(np.int8),
}
DTYPES = {name: DTYPES[name] for name in COLUMNS}
CSV_DTYPES = {name: dtype for name, dtype in DTYPES.items() if name != "timestamp"}
REQUIRED = tuple(c for c in COLUMNS if c not in ("user_ctr_7d", "session_depth", "time_on_site_s"))
CORRUPTIONS = ("nulls", "drift", "schema", "labels")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# --- the fixed part of the world (same for every seed) --------------------------------------
_MOBILE, _DESKTOP, _TABLET = 0, 1, 2
_DEVICE_P = np.array([0.58, 0.32, 0.10])
_COUNTRY_P = np.array([.26, .10, .07, .06, .06, .05, .05, .04, .04, .03,
                       .03, .03, .03, .025, .025, .02, .02, .02, .015, .015])
_COUNTRY_P = _COUNTRY_P / _COUNTRY_P.sum()
_COUNTRY_TZ = np.array([-5, 5, 0, 1, -3, 1, 9, -5, -6, 1, 1, 10, 7, 3, 9, 1, 1, 1, 1, 2])  # hours from platform time (UTC)
_COUNTRY_APPLE = np.array([.55, .05, .50, .35, .15, .35, .65, .55, .20, .25,
                           .25, .50, .10, .15, .30, .35, .20, .08, .55, .20])
_AGE_P = np.array([.15, .25, .22, .17, .12, .09])
_AGE_EFFECT = np.array([0.15, 0.10, 0.0, -0.05, -0.10, -0.05])
_AGE_VIDEO = np.array([0.30, 0.15, 0.0, -0.10, -0.20, -0.30])  # age x video_preroll
# placement mix given device (rows: mobile, desktop, tablet)
_PLACEMENT_P = np.array([[.30, .05, .20, .35, .10],
                         [.30, .30, .05, .20, .15],
                         [.25, .15, .15, .30, .15]])
_PLACEMENT_EFFECT = np.array([-0.30, -0.60, 0.50, 0.30, 0.20])
_PLACEMENT_X_DEVICE = np.array([[-0.3, -1.0, 0.8, 0.5, -0.6],   # mobile
                                [0.3, 0.5, -0.9, -0.4, 0.7],    # desktop
                                [0.0, 0.0, 0.3, 0.1, 0.4]])     # tablet
_DEPTH_X_DEVICE = np.array([-0.08, -0.02, -0.05])               # per page deep into the session
_DEVICE_EFFECT = np.array([0.0, 0.0, 0.1])
_DEVICE_DRIFT = np.array([0.35, -0.20, 0.0])                    # logit change over the whole period
_PLACEMENT_DRIFT = np.array([0.0, 0.0, 0.0, 0.20, 0.0])
_OS_EFFECT = np.array([0.0, 0.10, 0.05, 0.0, 0.05, -0.10, -0.05])
_BID_PLACEMENT = np.array([0.0, -0.3, 0.6, 0.2, 1.0])           # log bid floor by placement
_HOURLY_TRAFFIC = np.array([.35, .25, .20, .18, .20, .30, .50, .70, .85, .90, .95, 1.00,
                            1.05, 1.00, .95, .95, 1.00, 1.15, 1.35, 1.55, 1.65, 1.55, 1.20, .70])
_WEEKDAY_TRAFFIC = np.array([1.0, .98, .98, 1.0, 1.05, 1.15, 1.12])  # Monday = 0
_N_SITES, _N_ADVERTISERS, _N_CREATIVES, _N_KINDS = 400, 300, 5000, 8   # kinds: site categories = verticals
_INTERCEPT = -4.93                                              # puts the overall CTR near 3%
_USERS_PER_ROW = 1 / 20


@dataclass(frozen=True)
class _World:
    """Everything that is shared by all chunks of one data set: entities and their effects."""
    n_users: int
    user_ids: np.ndarray
    user_device: np.ndarray
    user_apple: np.ndarray
    user_desktop_os: np.ndarray
    user_country: np.ndarray
    user_age: np.ndarray
    user_propensity: np.ndarray
    user_ctr_7d: np.ndarray
    site_ids: np.ndarray
    site_kind: np.ndarray
    site_bid: np.ndarray
    creative_ids: np.ndarray
    creative_advertiser: np.ndarray
    creative_quality: np.ndarray
    creative_slope: np.ndarray
    advertiser_ids: np.ndarray
    affinity: np.ndarray          # advertiser vertical x site category
    kind_gain: np.ndarray         # how much creative quality matters per site category
    country_effect: np.ndarray
    country_hour_amp: np.ndarray
    country_bid: np.ndarray
    traffic_cdf: np.ndarray       # cumulative traffic share per hour of the period
    start: np.datetime64
    days: int
    drift: float
    ctr_shift: float = 0.0        # added to every click logit: a harder (> 0) or easier (< 0) period


def _rng(seed, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _zipf_ranks(rng: np.random.Generator, n: int, size: int, offset: float) -> np.ndarray:
    """Ranks 0..n-1 with P(rank r) ~ 1/(r + offset) (continuous Zipf-Mandelbrot, exponent 1)."""
    ratio = (n + offset) / offset
    ranks = (offset * ratio ** rng.random(size) - offset).astype(np.int64)
    return np.minimum(ranks, n - 1)


def _distinct_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct int64 ids in [low, high), in random order (rank 0 is not the smallest id)."""
    ids = rng.choice(high - low, size=n, replace=False).astype(np.int64) + low
    return ids


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _check(rows: int, days: int, drift: float, chunk_rows: int = 1) -> None:
    if int(rows) != rows or rows < 0:
        raise ValueError(f"rows must be a whole number >= 0, got {rows!r}")
    if int(days) != days or days < 1:
        raise ValueError(f"days must be a whole number >= 1, got {days!r}")
    if not np.isfinite(drift) or drift < 0:
        raise ValueError(f"drift must be a finite number >= 0, got {drift!r}")
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a whole number >= 1, got {chunk_rows!r}")


def _world(seed: int, rows: int, start: str, days: int, drift: float, ctr_shift: float = 0.0) -> _World:
    rng = _rng(seed, 0)
    n_users = max(1, int(round(rows * _USERS_PER_ROW)))
    user_country = rng.choice(len(_COUNTRY_P), size=n_users, p=_COUNTRY_P).astype(np.int8)
    propensity = rng.normal(0.0, 0.7, n_users)
    # 7-day history: busier users (low rank) have seen more ads; the rate is a noisy view of the propensity
    seen = 1 + rng.poisson(150.0 * np.sqrt(200.0 / (np.arange(n_users) + 200.0)))
    clicks = rng.binomial(seen, _sigmoid(-3.6 + propensity + rng.normal(0, 0.3, n_users)))
    n_advertisers = _N_ADVERTISERS
    advertiser_kind = rng.integers(0, _N_KINDS, n_advertisers)
    affinity = rng.normal(0.0, 0.2, (_N_KINDS, _N_KINDS)) + np.eye(_N_KINDS) * 0.6
    creative_advertiser = _zipf_ranks(rng, n_advertisers, _N_CREATIVES, 3.0)
    quality = rng.normal(0.0, 0.45, _N_CREATIVES) + rng.normal(0.0, 0.2, n_advertisers)[creative_advertiser]
    start64 = np.datetime64(start, "s")
    hours = start64.astype(np.int64) // 3600 + np.arange(days * 24)      # hours since 1970-01-01 (a Thursday)
    traffic = _HOURLY_TRAFFIC[hours % 24] * _WEEKDAY_TRAFFIC[(hours // 24 + 3) % 7]
    country_bid = rng.normal(0.0, 0.25, len(_COUNTRY_P))
    country_bid[0] = 0.35
    return _World(
        n_users=n_users,
        user_ids=_distinct_ids(rng, n_users, 10_000_000, 10_000_000 + max(100 * n_users, 10_000_000)),
        user_device=rng.choice(3, size=n_users, p=_DEVICE_P).astype(np.int8),
        user_apple=rng.random(n_users) < _COUNTRY_APPLE[user_country],
        user_desktop_os=rng.choice(np.array([3, 5, 6], dtype=np.int8), size=n_users, p=[.85, .05, .10]),
        user_country=user_country,
        user_age=rng.choice(len(_AGE_P), size=n_users, p=_AGE_P).astype(np.int8),
        user_propensity=propensity,
        user_ctr_7d=np.round(clicks / seen, 4).astype(np.float32),
        site_ids=_distinct_ids(rng, _N_SITES, 1_000, 100_000),
        site_kind=rng.integers(0, _N_KINDS, _N_SITES),
        site_bid=rng.normal(0.0, 0.3, _N_SITES),
        creative_ids=_distinct_ids(rng, _N_CREATIVES, 100_000, 1_000_000),
        creative_advertiser=creative_advertiser,
        creative_quality=quality,
        creative_slope=rng.normal(-0.25, 0.35, _N_CREATIVES),
        advertiser_ids=_distinct_ids(rng, n_advertisers, 1_000, 10_000),
        affinity=affinity[advertiser_kind],          # indexed [advertiser, site category]
        kind_gain=rng.uniform(0.5, 1.5, _N_KINDS),
        country_effect=rng.normal(0.0, 0.2, len(_COUNTRY_P)),
        country_hour_amp=rng.uniform(0.3, 0.8, len(_COUNTRY_P)),
        country_bid=country_bid,
        traffic_cdf=np.concatenate([[0.0], np.cumsum(traffic) / traffic.sum()]),
        start=start64,
        days=int(days),
        drift=float(drift),
        ctr_shift=float(ctr_shift),
    )


def _categorical(name: str, codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=DTYPES[name])


def _events(world: _World, rng: np.random.Generator, size: int, lo: float, hi: float) -> pd.DataFrame:
    """`size` impressions whose times are the [lo, hi) quantile slice of the period, in time order."""
    w = world
    # time: sorted uniforms through the inverse CDF of the piecewise-constant hourly traffic
    u = lo + (hi - lo) * rng.random(size)
    u.sort()
    cdf = w.traffic_cdf
    hour_index = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(cdf) - 2)
    within = np.clip((u - cdf[hour_index]) / (cdf[hour_index + 1] - cdf[hour_index]), 0.0, 1.0 - 1e-9)
    seconds = hour_index * 3600 + (within * 3600).astype(np.int64)
    del u, within
    timestamp = (w.start + seconds.astype("timedelta64[s]")).astype("datetime64[us]")
    day_seconds = timestamp.astype("datetime64[s]").astype(np.int64)
    hour = ((day_seconds // 3600) % 24).astype(np.int8)
    weekday = ((day_seconds // 86400 + 3) % 7).astype(np.int8)
    t = seconds / (w.days * 86400.0)                 # 0..1 through the period, for drift
    del day_seconds, seconds

    # who
    user = _zipf_ranks(rng, w.n_users, size, 50.0)
    device = np.where(rng.random(size) < 0.8, w.user_device[user],
                      rng.choice(3, size=size, p=_DEVICE_P)).astype(np.int8)
    apple = w.user_apple[user]
    os_code = np.select([device == _DESKTOP, device == _TABLET],
                        [np.where(apple, 4, w.user_desktop_os[user]), np.where(apple, 2, 0)],
                        np.where(apple, 1, 0)).astype(np.int8)
    country = w.user_country[user]
    age = w.user_age[user]

    # where
    site = _zipf_ranks(rng, _N_SITES, size, 2.0)
    placement = (rng.random(size)[:, None] > np.cumsum(_PLACEMENT_P, axis=1)[device][:, :-1]).sum(axis=1).astype(np.int8)
    coin = rng.random(size)
    ad_size = np.select(
        [placement == 0, placement == 1, placement == 2, placement == 3],
        [np.where(device == _MOBILE, 0, 1), np.where(coin < 0.7, 2, 3),
         np.where(device == _MOBILE, 4, 5), np.where(coin < 0.6, 6, 2)],
        7).astype(np.int8)
    del coin
    creative = _zipf_ranks(rng, _N_CREATIVES, size, 5.0)
    advertiser = w.creative_advertiser[creative]

    # numeric context
    log_bid = (-0.9 + _BID_PLACEMENT[placement] + w.country_bid[country] + w.site_bid[site]
               + rng.normal(0.0, 0.45, size) + 0.10 * w.drift * t)
    bid_floor = np.round(np.exp(log_bid), 3).astype(np.float32)
    user_ctr_7d = w.user_ctr_7d[user].copy()
    user_ctr_7d[rng.random(size) < 0.08] = np.nan
    depth = rng.geometric(0.35, size).astype(np.float32)
    on_site = rng.lognormal(np.log(90.0), 1.1, size)
    tracking_lost = rng.random(size) < 0.03                  # both session fields lost together
    depth_missing = tracking_lost | (rng.random(size) < 0.01)
    on_site_missing = tracking_lost | (rng.random(size) < np.where(device == _DESKTOP, 0.06, 0.02))

    # click
    quality = w.creative_quality[creative] + w.creative_slope[creative] * (w.drift * t)
    kind = w.site_kind[site]
    local_hour = (hour + _COUNTRY_TZ[country]) % 24
    logit = (_INTERCEPT + w.ctr_shift
             + _PLACEMENT_EFFECT[placement] + _PLACEMENT_X_DEVICE[device, placement]
             + _DEVICE_EFFECT[device] + (_DEVICE_DRIFT[device] + _PLACEMENT_DRIFT[placement]) * (w.drift * t)
             + _OS_EFFECT[os_code] + _AGE_EFFECT[age] + np.where(placement == 4, _AGE_VIDEO[age], 0.0)
             + w.country_effect[country]
             + w.country_hour_amp[country] * np.cos(2 * np.pi * (local_hour - 20) / 24)
             + quality * w.kind_gain[kind] + w.affinity[advertiser, kind]
             + w.user_propensity[user] * np.where(placement == 3, 1.4, 1.0)
             + 0.10 * (log_bid + 0.5)
             + 0.25 * (depth == 1) + _DEPTH_X_DEVICE[device] * np.minimum(depth, 15)
             + 0.7 * np.exp(-0.5 * ((np.log(on_site) - np.log(60.0)) / 0.7) ** 2) - 0.4 * (on_site < 5)
             + rng.normal(0.0, 0.3, size))
    del quality, kind, local_hour, log_bid, t
    click = (rng.random(size) < _sigmoid(logit)).astype(np.int8)
    del logit
    depth[depth_missing] = np.nan
    on_site = np.round(on_site, 1).astype(np.float32)
    on_site[on_site_missing] = np.nan

    return pd.DataFrame({
        "timestamp": timestamp, "hour": hour, "weekday": weekday,
        "user_id": w.user_ids[user],
        "device": _categorical("device", device), "os": _categorical("os", os_code),
        "country": _categorical("country", country), "age_bucket": _categorical("age_bucket", age),
        "site_id": w.site_ids[site], "placement": _categorical("placement", placement),
        "ad_size": _categorical("ad_size", ad_size),
        "creative_id": w.creative_ids[creative], "advertiser_id": w.advertiser_ids[advertiser],
        "bid_floor": bid_floor, "user_ctr_7d": user_ctr_7d, "session_depth": depth, "time_on_site_s": on_site,
        "click": click,
    })


def _chunks(rows: int, seed: int, chunk_rows: int, start: str, days: int, drift: float, ctr_shift: float = 0.0):
    """The data set as consecutive time slices; chunk i draws from the seed's stream (1, i)."""
    world = _world(seed, rows, start, days, drift, ctr_shift)
    for index, first in enumerate(range(0, max(rows, 1), chunk_rows)):
        size = min(chunk_rows, rows - first)
        yield index, _events(world, _rng(seed, 1, index), size, first / max(rows, 1), (first + size) / max(rows, 1))


def generate(rows: int = 1_000_000, seed: int = 0, start: str = "2026-10-01", days: int = 14,
             drift: float = 1.0, ctr_shift: float = 0.0) -> pd.DataFrame:
    """`rows` impressions over `days` days from `start`, in time order; the same arguments
    give the same frame. Columns and dtypes are `DTYPES`; see the module docstring.
    `ctr_shift` is added to every click logit (0.7 roughly doubles the CTR): the same impressions
    in a harder or easier period -- only `click` changes."""
    _check(rows, days, drift)
    return next(_chunks(int(rows), seed, max(int(rows), 1), start, int(days), drift, ctr_shift))[1]


def read(path: str | os.PathLike) -> pd.DataFrame:
    """A file from `write` (CSV or Parquet) back with the dtypes `generate` uses (also works for
    corrupted files: unknown columns and values are kept as read)."""
    path = Path(path)
    fmt = _format(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    header = pd.read_csv(path, nrows=0).columns
    frame = pd.read_csv(path, dtype={k: v for k, v in CSV_DTYPES.items()
                                     if k in header and not isinstance(v, pd.CategoricalDtype)},
                        parse_dates=["timestamp"] if "timestamp" in header else False)
    for name, dtype in CSV_DTYPES.items():
        if name in frame and isinstance(dtype, pd.CategoricalDtype):
            extra = sorted(set(frame[name].dropna().unique()) - set(dtype.categories))
            frame[name] = frame[name].astype(pd.CategoricalDtype([*dtype.categories, *extra]))
    if "timestamp" in frame and frame["timestamp"].dtype != DTYPES["timestamp"]:
        frame["timestamp"] = frame["timestamp"].astype(DTYPES["timestamp"])
    return frame


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: cannot tell the format from {path.suffix or 'no extension'!r}; use "
                         f"{', '.join(FORMATS)}")
    return fmt


def write(path: str | os.PathLike, rows: int = 1_000_000, seed: int = 0, chunk_rows: int = 1_000_000, *,
          corrupt: str | None = None, start: str = "2026-10-01", days: int = 14, drift: float = 1.0) -> Path:
    """Write `rows` impressions to CSV or Parquet (by extension) in chunks of `chunk_rows`, so
    memory stays bounded (one Parquet row group per chunk). One world for the whole file;
    chunk i covers the i-th time slice with its own random stream, so the file is in time order
    and, for rows <= chunk_rows, holds exactly `generate(rows, seed, ...)`. With `corrupt`,
    each chunk goes through `corrupt(chunk, kind)` first (chunk 0 with `seed`). The file
    appears only when complete. Returns the path."""
    _check(rows, days, drift, chunk_rows)
    if corrupt is not None and corrupt not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corrupt!r}; use one of {', '.join(CORRUPTIONS)}")
    path = Path(path)
    fmt = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    writer = None
    try:
        for index, chunk in _chunks(int(rows), seed, int(chunk_rows), start, int(days), drift):
            if corrupt is not None:
                chunk = _corrupt(chunk, corrupt, _rng(seed, 2, index))
            if fmt == "csv":
                chunk.to_csv(partial, mode="w" if index == 0 else "a", header=index == 0, index=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                if writer is None:
                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    schema = table.schema
                    writer = pq.ParquetWriter(partial, schema, compression="zstd")
                else:
                    table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
                writer.write_table(table, row_group_size=max(len(chunk), 1))
                del table
            del chunk
        if writer is not None:
            writer.close()
            writer = None
        os.replace(partial, path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return path


def corrupt(frame: pd.DataFrame, kind: str, seed: int = 0) -> pd.DataFrame:
    """A deliberately bad copy of `frame` (which is left alone), for contract tests:
    "nulls": 30% of `bid_floor` (a required column) become NaN; "drift": the device set
    changes (30% of rows become "smart_tv") and `bid_floor` is in cents (x100); "schema":
    `user_ctr_7d` is renamed `user_ctr_7day` and `ad_size` is dropped; "labels": about 2% of
    `click` values become 2 or -1."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    return _corrupt(frame, kind, _rng(seed, 2, 0))


def _corrupt(frame: pd.DataFrame, kind: str, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    n = len(out)
    if kind == "nulls":
        values = out["bid_floor"].to_numpy(dtype=np.float32, copy=True)
        values[rng.random(n) < 0.30] = np.nan
        out["bid_floor"] = values
    elif kind == "drift":
        device = out["device"].cat.add_categories(["smart_tv"])
        device[rng.random(n) < 0.30] = "smart_tv"
        out["device"] = device
        out["bid_floor"] = (out["bid_floor"] * 100).astype(np.float32)
    elif kind == "schema":
        out = out.rename(columns={"user_ctr_7d": "user_ctr_7day"}).drop(columns="ad_size")
    elif kind == "labels":
        click = out["click"].to_numpy(dtype=np.int8, copy=True)
        bad = rng.random(n) < 0.02
        click[bad] = np.where(rng.random(int(bad.sum())) < 0.5, 2, -1)
        out["click"] = click
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.examples.ad_logs",
                                     description="Write synthetic ad-impression logs (CSV or Parquet by extension).")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output file: .csv, .parquet or .pq")
    parser.add_argument("--corrupt", choices=CORRUPTIONS, help="write a deliberately bad copy")
    parser.add_argument("--start", default="2026-10-01")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--drift", type=float, default=1.0)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        path = write(args.out, rows=args.rows, seed=args.seed, chunk_rows=args.chunk_rows, corrupt=args.corrupt,
                     start=args.start, days=args.days, drift=args.drift)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {args.rows} rows to {path} ({path.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
