"""Tidy summary tables of a study: concatenated CSVs, means with 95 % confidence intervals per group, and
the selections the headline and the figures read (each policy at its best steps, as its run acted).

Confidence intervals are percentile bootstraps of the mean (`stats.mean_ci`) over every episode of every
training seed in a group. With one seed they describe evaluation noise only, not training noise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from myreinflow.errors import UserError
from myreinflow.stats import mean_ci

# evaluation metrics summarised in table.csv, when the eval CSVs have them
EVAL_METRICS = ("normalized_score", "return", "final_distance", "success", "length", "latency_ms")
# task, reward (OGBench) and horizon_steps describe a dataset entry's runs; older eval CSVs lack them
GROUP_KEYS = (
    *("stage", "dataset", "env_id", "task", "reward", "horizon_steps", "candidates", "run_candidates"),
    *("flow", "policy", "inference_steps"),
)
# results/{stage}/{dataset}/{flow}/seed{seed}/train.csv (the output contract)
TRAIN_PATH = re.compile(r"(?P<stage>[^/]+)/(?P<dataset>[^/]+)/(?P<flow>[^/]+)/seed(?P<seed>\d+)/train\.csv$")


def read_csvs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Rows of every CSV, in order; columns missing from some files are empty there."""
    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"input {str(path)!r} does not exist")
        frames.append(pd.read_csv(path))
    if not frames:
        raise UserError("no input CSV files given")
    return pd.concat(frames, ignore_index=True)


def read_train(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Training CSVs labelled with stage, dataset, flow and seed from their contract paths."""
    frames = []
    for path in paths:
        match = TRAIN_PATH.search(Path(path).as_posix())
        if not match:
            raise UserError(f"{str(path)!r} is not a <stage>/<dataset>/<flow>/seed<N>/train.csv path")
        frame = read_csvs([path])
        labels = match.groupdict()
        frame.insert(0, "seed", int(labels.pop("seed")))
        for i, (key, value) in enumerate(labels.items()):
            frame.insert(i, key, value)
        frames.append(frame)
    if not frames:
        raise UserError("no input CSV files given")
    return pd.concat(frames, ignore_index=True)


def ci_table(evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (stage, dataset, env, flow, policy, inference_steps, metric) that has values: n, seeds,
    mean, CI (no row for a metric a group does not have, e.g. the normalized score of OGBench tasks).
    Whole-number keys stay integers where some rows lack them (Pusher rows have no OGBench task)."""
    keys = [k for k in GROUP_KEYS if k in evals]
    metrics = [m for m in EVAL_METRICS if m in evals]
    rows = []
    for group, frame in evals.groupby(keys, sort=True, dropna=False):
        for metric in metrics:
            if frame[metric].notna().sum() == 0:
                continue
            mean, low, high = mean_ci(frame[metric].to_numpy())
            rows.append(
                {
                    **dict(zip(keys, group, strict=True)),
                    "metric": metric,
                    "n": int(frame[metric].notna().sum()),
                    "n_seeds": int(frame["seed"].nunique()) if "seed" in frame else 1,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    table = pd.DataFrame(rows, columns=[*keys, "metric", "n", "n_seeds", "mean", "ci_low", "ci_high"])
    for key in ("task", "horizon_steps", "candidates", "inference_steps"):
        if key in table and table[key].dropna().mod(1).eq(0).all():
            table[key] = table[key].astype("Int64")
    return table


def headline_metric(table: pd.DataFrame) -> str:
    """The metric a dataset's results are judged by: the normalized score, or the success rate where
    the data has no normalized score (OGBench tasks: their play data has no reference returns)."""
    scores = table.loc[table["metric"] == "normalized_score", "mean"]
    return "success" if scores.isna().all() and "success" in set(table["metric"]) else "normalized_score"


def best_steps(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Per (stage, dataset, flow, policy): the inference steps with the highest mean `metric` (default:
    each dataset's `headline_metric`)."""
    frames = []
    for _, data in table.groupby("dataset", sort=True):
        rows = data[data["metric"] == (metric or headline_metric(data))]
        idx = rows.groupby(["stage", "dataset", "flow", "policy"], sort=True)["mean"].idxmax()
        frames.append(rows.loc[idx.dropna()])
    return pd.concat(frames) if frames else table.iloc[:0]


def policy_rows(table, stage, dataset, flow, policy, steps=None, metric="normalized_score"):
    rows = table[
        (table["stage"] == stage)
        & (table["dataset"] == dataset)
        & (table["flow"] == flow)
        & (table["policy"] == policy)
        & (table["metric"] == metric)
    ]
    if steps is not None:
        rows = rows[rows["inference_steps"] == steps]
    return rows


def as_trained(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of policies evaluated as their runs acted in training: with the run's own best-of-N
    (`run_candidates`; 1 where a table predates it). Other `eval --candidates` rows answer other
    questions."""
    if "candidates" not in table:
        return table
    own = table["run_candidates"].fillna(1) if "run_candidates" in table else 1
    return table[table["candidates"].fillna(1) == own]
