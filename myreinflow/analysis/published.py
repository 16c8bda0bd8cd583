"""Our OGBench success rates beside the published ones (`published.yaml`), one row per pair.

A result is matched to published entries by env family (`cube-single` of `cube-single-singletask-task2-v0`),
reward variant and method: a BC stage is "BC" (the best BC policy of the dataset, any model, at its best
steps), an FQL stage's one-step policy is "FQL" with h = 1 and "QC-FQL" with h > 1 (Q-chunking's name), an FQL
online run's "FQL online" (FQL's offline-to-online numbers).
A published number of one task (an entry with a `task`) is matched only by results of that task; 5-task
averages by every task of the env. For each match the row holds the published number nearest to our update
budget and the final one, so a CPU budget is never silently compared with a 1M-update number:
`budget_ratio` says how far apart they are.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from myreinflow.analysis.tables import best_steps

PUBLISHED = Path(__file__).with_name("published.yaml")
COLUMNS = [
    "dataset", "env", "task", "reward", "method", "horizon_steps", "policy", "n_seeds", "updates", "success",
    "ci_low", "ci_high", "published_success", "published_ci_low", "published_ci_high", "published_updates",
    "budget_ratio", "published_tasks", "published_horizon", "source",
]  # fmt: skip


@cache
def published() -> pd.DataFrame:
    pub = pd.DataFrame(yaml.safe_load(PUBLISHED.read_text())["entries"])
    one_task = pub["task"].notna()
    pub.loc[one_task, "tasks"] = [f"task {int(t)}" for t in pub.loc[one_task, "task"]]
    return pub


def method_of(stage: str, policy: str, horizon: int) -> str | None:
    """The published method a (stage, policy, h) result stands for; None where nothing is published."""
    if stage == "bc":
        return "BC"
    if stage == "fql" and policy == "onestep":
        return "FQL" if horizon == 1 else "QC-FQL"
    if stage == "fql_online" and policy == "onestep" and horizon == 1:
        return "FQL online"
    return None


def updates_of(train: pd.DataFrame) -> pd.Series:
    """Mean over seeds of each run's last update step, per (stage, dataset)."""
    last = train.groupby(["stage", "dataset", "flow", "seed"])["step"].max()
    return last.groupby(["stage", "dataset"]).mean()


def compare(table: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Rows of `COLUMNS`: our success (mean, 95 % CI) next to each matching published number."""
    needed = {"env_id", "horizon_steps", "metric"}
    if table.empty or not needed <= set(table) or "success" not in set(table["metric"]):
        return pd.DataFrame(columns=COLUMNS)
    best = best_steps(table[table["metric"] == "success"], "success")
    budgets = updates_of(train) if len(train) else pd.Series(dtype=float)
    rows = []
    for (stage, dataset), runs in best.groupby(["stage", "dataset"], sort=True):
        pairs = zip(runs["policy"], runs["horizon_steps"], strict=True)
        runs = runs.assign(method=[method_of(stage, p, h) for p, h in pairs])
        runs = runs.dropna(subset=["method"])
        if not len(runs):
            continue
        # BC: its best policy; a critic-based stage: each flow's one-step policy (FQL from the ReFlow and
        # from the MeanFlow are two rows beside the same published number)
        picked = [runs.loc[runs["mean"].idxmax()]] if stage == "bc" else [r for _, r in runs.iterrows()]
        for ours in picked:
            rows += _beside_published(ours, stage, dataset, budgets)
    return pd.DataFrame(rows, columns=COLUMNS)


def _beside_published(ours: pd.Series, stage: str, dataset: str, budgets: pd.Series) -> list[dict]:
    """Rows of `COLUMNS`: one result of ours beside each published number of its method, env, reward and
    task (of each source: the final number and the one nearest to our budget)."""
    pub, rows = published(), []
    env = str(ours["env_id"]).split("-singletask")[0]
    reward = ours.get("reward") if isinstance(ours.get("reward"), str) else "dense"
    same_task = pub["task"].isna() | (pub["task"] == ours.get("task"))
    same_method = (pub["env"] == env) & (pub["reward"] == reward) & (pub["method"] == ours["method"])
    match = pub[same_method & same_task]
    updates = float(budgets.get((stage, dataset), float("nan")))
    for _, group in match.groupby("source", sort=False):
        picks = [group["updates"].idxmax()]  # the published final number, and the nearest to ours
        if pd.notna(updates):
            picks.insert(0, (group["updates"] - updates).abs().idxmin())
        for entry in (group.loc[i] for i in dict.fromkeys(picks)):
            rows.append(
                {
                    "dataset": dataset, "env": env, "task": ours.get("task"), "reward": reward,
                    "method": ours["method"], "horizon_steps": int(ours["horizon_steps"]),
                    "policy": f"{ours['flow']} {ours['policy']} K={int(ours['inference_steps'])}",
                    "n_seeds": int(ours["n_seeds"]), "updates": updates, "success": ours["mean"],
                    "ci_low": ours["ci_low"], "ci_high": ours["ci_high"],
                    "published_success": entry["success"], "published_ci_low": entry["ci_low"],
                    "published_ci_high": entry["ci_high"], "published_updates": int(entry["updates"]),
                    "budget_ratio": updates / entry["updates"], "published_tasks": entry["tasks"],
                    "published_horizon": int(entry["horizon"]), "source": entry["source"],
                }
            )  # fmt: skip
    return rows
