"""Per-run numbers of the critic-based runs: training speed (updates per second) and each run's mean of
its last evaluations during training, with each method's intervals over seeds and over episodes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from myreinflow.names import CRITIC_STAGES
from myreinflow.stats import t_half_width, wilson


def training_speed(train: pd.DataFrame) -> pd.DataFrame:
    """Updates per second of each training run (stage, dataset, flow, seed): the median over its log
    rows without an evaluation of Δstep / Δwall_s (the first row, with any compile time, counts as one);
    for a run whose every row evaluated, its last step / wall_s (evaluations included)."""
    evals = [c for c in train if c.startswith("eval") and c.split("/")[-1] in ("success", "normalized_score")]
    keys = ["stage", "dataset", "flow", "seed"]
    rows = []
    for group, run in train.sort_values("step").groupby(keys, sort=True):
        plain = run[evals].isna().all(axis=1) if evals else pd.Series(True, index=run.index)
        rate = run["step"].diff().fillna(run["step"]) / run["wall_s"].diff().fillna(run["wall_s"])
        rate = rate[plain & np.isfinite(rate)]
        # a run that evaluated at every row (e.g. one row): its whole rate, evaluations included
        whole = run["step"].iloc[-1] / run["wall_s"].iloc[-1] if run["wall_s"].iloc[-1] > 0 else np.nan
        rows.append(
            {
                **dict(zip(keys, group, strict=True)),
                "updates_per_s": float(rate.median() if len(rate) else whole),
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "updates_per_s"])


# a run's number in the RL study: the mean of its last LAST_EVALUATIONS evaluations during training
LAST_EVALUATIONS = 3
RUN_COLUMNS = (
    *("level", "stage", "dataset", "flow", "seed", "metric", "evaluations", "last_steps", "episodes"),
    *("mean", "t_low", "t_high", "wilson_low", "wilson_high"),
)


def run_numbers(train: pd.DataFrame, episodes: dict[tuple, int]) -> pd.DataFrame:
    """The number of each critic-based run (level `run`): the mean of the acting policy's last three
    evaluations during training (`eval/success`, else `eval/normalized_score`), over `episodes[(stage,
    dataset, flow, seed)]` episodes each; and of each method (level `method`, seed empty): the mean over
    its seeds with the 95 % t-interval over the seeds' numbers (none for one seed) and, for success, the
    95 % Wilson interval of all their episodes pooled (for a run: of its own)."""
    rows = []
    keys = ["stage", "dataset", "flow", "seed"]
    for (stage, dataset, flow, seed), run in train[train["stage"].isin(CRITIC_STAGES)].groupby(
        keys, sort=True
    ):
        metric = next(
            (m for m in ("success", "normalized_score") if run.get(f"eval/{m}", pd.Series()).notna().any()),
            None,
        )
        if metric is None:
            continue
        evals = run[run[f"eval/{metric}"].notna()].sort_values("step").tail(LAST_EVALUATIONS)
        n = episodes[(stage, dataset, flow, seed)] * len(evals)
        mean = float(evals[f"eval/{metric}"].mean())
        rows.append(
            dict(level="run", stage=stage, dataset=dataset, flow=flow, seed=seed, metric=metric,
                 evaluations=len(evals), last_steps="/".join(str(int(s)) for s in evals["step"]), episodes=n,
                 mean=mean, **_wilson(mean, n, metric))
        )  # fmt: skip
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    methods = []
    for (stage, dataset, flow, metric), group in runs.groupby(
        ["stage", "dataset", "flow", "metric"], sort=True
    ):
        values, n = group["mean"].to_numpy(), int(group["episodes"].sum())
        mean = float(values.mean())
        half = t_half_width(values)
        methods.append(
            dict(level="method", stage=stage, dataset=dataset, flow=flow, metric=metric,
                 evaluations=int(group["evaluations"].sum()), episodes=n, mean=mean, t_low=mean - half,
                 t_high=mean + half, **_wilson(mean, n, metric), seed=pd.NA, last_steps="")
        )  # fmt: skip
    table = pd.concat([runs, pd.DataFrame(methods, columns=RUN_COLUMNS)], ignore_index=True)
    return table.astype({"seed": "Int64", "evaluations": "Int64", "episodes": "Int64"})


def _wilson(mean: float, n: int, metric: str) -> dict:
    """The 95 % Wilson interval of a success rate `mean` over `n` episodes (NaN for other metrics)."""
    if metric != "success" or n < 1:
        return {"wilson_low": np.nan, "wilson_high": np.nan}
    low, high = wilson(round(mean * n), n)
    return {"wilson_low": low, "wilson_high": high}
