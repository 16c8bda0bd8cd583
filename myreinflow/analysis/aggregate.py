"""Tidy summary tables of a study: concatenated CSVs, means with 95 % confidence intervals, headline numbers.

Confidence intervals are percentile bootstraps of the mean (`scipy.stats.bootstrap`, 2000 resamples,
fixed seed) over every episode of every training seed in a group. With one seed they describe
evaluation noise only, not training noise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from myreinflow.configs import CRITIC_STAGES
from myreinflow.errors import UserError

# evaluation metrics summarised in table.csv, when the eval CSVs have them
EVAL_METRICS = ("normalized_score", "return", "final_distance", "success", "length", "latency_ms")
# task, reward (OGBench) and horizon_steps describe a dataset entry's runs; older eval CSVs lack them
GROUP_KEYS = (
    *("stage", "dataset", "env_id", "task", "reward", "horizon_steps", "candidates", "run_candidates"),
    *("flow", "policy", "inference_steps"),
)
CI_LEVEL = 0.95
N_RESAMPLES = 2000
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


def mean_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) with a 95 % percentile-bootstrap interval; NaN bounds for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    if np.all(values == values[0]):
        return mean, mean, mean
    res = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=CI_LEVEL,
        n_resamples=N_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


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


def _score(table, stage, dataset, flow, policy, steps=None, metric="normalized_score"):
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


# the critic-based methods of the ReFlow-vs-MeanFlow comparison in RL: (stage, flow) → (the policy that
# acts, its legend name, the flow steps K it acts with: QC's defaults); FQL from the ReFlow is the
# reference each other method is measured by
CRITIC_METHODS = {
    ("fql", "reflow"): ("onestep", "FQL from ReFlow", 1),
    ("fql", "meanflow"): ("onestep", "FQL from MeanFlow", 1),
    ("mfql", "meanflow"): ("flow", "MeanFlow-QL", 1),
    ("qc", "reflow"): ("flow", "QC over ReFlow", 10),
    ("qc", "meanflow"): ("flow", "QC over MeanFlow", 1),
}
RL_REFERENCE = ("fql", "reflow")
QC_REFERENCE = ("qc", "reflow")  # the strongest multi-step method: each MeanFlow-based one against it too


def as_trained(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of policies evaluated as their runs acted in training: with the run's own best-of-N
    (`run_candidates`; 1 where a table predates it). Other `eval --candidates` rows answer other
    questions."""
    if "candidates" not in table:
        return table
    own = table["run_candidates"].fillna(1) if "run_candidates" in table else 1
    return table[table["candidates"].fillna(1) == own]


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


def rl_headline(table: pd.DataFrame, train: pd.DataFrame | None) -> list[dict]:
    """ReFlow vs MeanFlow in RL, per dataset, against two references where they ran: FQL from the ReFlow
    (every other critic-based method) and QC over the ReFlow (the strongest multi-step method, against
    each MeanFlow-based one). Per pair: the method's acting policy (as it acts: its steps K and its
    best-of-N) minus the reference's in the headline metric (holds when its mean reaches the reference's
    95 % interval), the updates/s ratio (from the same run's train CSVs; holds at ≥ 1.5) and, against QC
    over the ReFlow (N·K network evaluations per chunk), the acting-latency ratio (holds at ≥ 5). The
    one-evaluation methods get no latency row against FQL: their sub-millisecond timings of one rollout
    are noise at that scale (two one-step networks of the same size: 0.60 and 0.89 ms in one default
    run)."""
    rows = []
    speed = training_speed(train) if train is not None and len(train) else None
    references = {RL_REFERENCE: [m for m in CRITIC_METHODS if m != RL_REFERENCE]}
    references[QC_REFERENCE] = [m for m in CRITIC_METHODS if m[1] == "meanflow"]
    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])

        def acting(method, what=metric, dataset=dataset):
            policy, _, steps = CRITIC_METHODS[method]
            hit = _score(table, method[0], dataset, method[1], policy, steps, what)
            return hit.iloc[0] if len(hit) else None

        def rate(method, dataset=dataset):
            if speed is None:
                return None
            runs = speed[
                (speed["stage"] == method[0]) & (speed["dataset"] == dataset) & (speed["flow"] == method[1])
            ]
            return float(runs["updates_per_s"].mean()) if len(runs) else None

        for reference, methods in references.items():
            ref, ref_name = acting(reference), CRITIC_METHODS[reference][1]
            for method in methods if ref is not None else ():
                ours, name = acting(method), CRITIC_METHODS[method][1]
                if ours is None:
                    continue
                base = {"dataset": dataset, "stage": method[0]}
                rows.append(
                    base
                    | {
                        "metric": metric,
                        "question": f"{name} minus {ref_name} (acting policies, as they act)",
                        **_side("a", table, ours),
                        **_side("b", table, ref),
                        "difference": float(ours["mean"] - ref["mean"]),
                        "holds": bool(ours["mean"] >= ref["ci_low"]) if pd.notna(ref["ci_low"]) else None,
                        "criterion": "a's mean >= b's 95 % CI low",
                    }
                )
                # (metric, question, a, its value, b, its value, the bound a / b must reach)
                ratios = [
                    ("updates_per_s", f"{name} updates/s divided by {ref_name}'s (same run)")
                    + (name, rate(method), ref_name, rate(reference), 1.5)
                ]
                if reference == QC_REFERENCE:
                    latency = [acting(m, "latency_ms") for m in (reference, method)]
                    ms = [None if x is None else float(x["mean"]) for x in latency]
                    question = f"{ref_name}'s acting latency divided by {name}'s (ms per chunk)"
                    ratios.append(("latency_ms", question, ref_name, ms[0], name, ms[1], 5))
                for what, question, a_name, a, b_name, b, bound in ratios:
                    if a is None or b is None or b <= 0:
                        continue
                    rows.append(
                        base
                        | {
                            "metric": what,
                            "question": question,
                            "a": a_name,
                            "a_mean": a,
                            "b": b_name,
                            "b_mean": b,
                            "difference": a / b,
                            "holds": bool(a / b >= bound),
                            "criterion": f"ratio >= {bound}",
                        }
                    )
    return rows


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
        half = (
            stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
            if len(values) > 1
            else np.nan
        )
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
    ci = stats.binomtest(round(mean * n), n).proportion_ci(confidence_level=CI_LEVEL, method="wilson")
    return {"wilson_low": float(ci.low), "wilson_high": float(ci.high)}


# the online stages: stage → (its name, the policy of its runs that acts online, None: the run's one
# policy). {algo}_online continues the offline {algo} run (its acting policy acts: FQL's one-step policy,
# MeanFlow-QL's and QC's flow); ReinFlow fine-tunes one policy: an FQL run's one-step policy, or the BC flow
# where the dataset has no FQL stage
ONLINE_STAGES = {
    "fql_online": ("FQL online", "onestep"),
    "mfql_online": ("MeanFlow-QL online", "flow"),
    "qc_online": ("QC online", "flow"),
    "reinflow": ("ReinFlow", None),
}
# each online stage's control: the offline run continued for as many updates without the env
CONTROL_STAGES = {f"{algo}_continued": f"{algo}_online" for algo in CRITIC_STAGES}
# how a flow (or baseline) is named in headline rows and figures
FLOW_LABELS = {"reflow": "ReFlow", "meanflow": "MeanFlow", "rectified": "2-rectified flow", "mlp": "MLP"}


def online_headline(table: pd.DataFrame, best: pd.DataFrame) -> list[dict]:
    """Online fine-tuning, per dataset, online stage and flow, in the dataset's headline metric (with
    final distances where the env has them): the acting policy after the online stage minus the same
    policy before it (an online run's against its offline run's, as it acts: CRITIC_METHODS' steps; a
    ReinFlow run's against the policy it started from, each at its best steps) and, where the control
    ran, minus the control's: the lift the env's data bought beyond the extra updates."""
    controls = {online: control for control, online in CONTROL_STAGES.items()}
    rows = []
    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])
        at = best[(best["dataset"] == dataset) & (best["metric"] == metric)]
        for stage, (name, acting) in ONLINE_STAGES.items():
            for _, run in at[
                (at["stage"] == stage) & (at["policy"] == acting if acting else True)
            ].iterrows():
                flow, policy = run["flow"], run["policy"]
                if stage in controls:  # against its offline run, then its control, as it acts
                    start = stage.removesuffix("_online")
                    steps = CRITIC_METHODS[(start, flow)][2]
                    versus = {start: f"offline {STAGE_NAMES[start]}", controls[stage]: CONTROL_WORDS}
                else:  # ReinFlow: against the policy it started from, each at its best steps
                    start, steps = ("fql" if policy == "onestep" else "bc"), None
                    versus = {start: f"offline {STAGE_NAMES[start]}"}
                after = _policy_row(table, at, stage, dataset, flow, policy, steps, metric)
                what = "one-step policy" if policy == "onestep" else "flow"
                for other, other_name in versus.items():
                    before = _policy_row(table, at, other, dataset, flow, policy, steps, metric)
                    if after is None or before is None:
                        continue
                    rows.append(
                        {
                            "dataset": dataset,
                            "stage": stage,
                            "metric": metric,
                            "question": f"{name} minus {other_name} ({FLOW_LABELS.get(flow, flow)} {what})",
                            **_side("a", table, after),
                            **_side("b", table, before),
                            "difference": float(after["mean"] - before["mean"]),
                            "holds": bool(after["mean"] > before["mean"]),
                            "criterion": "difference > 0",
                        }
                    )
    return rows


def _policy_row(table, best, stage, dataset, flow, policy, steps, metric):
    """The summary row of `stage`'s `policy` of `flow` at `steps` on `dataset` (None: at its best steps,
    from `best`), or None."""
    if steps is None:
        hit = best[(best["stage"] == stage) & (best["dataset"] == dataset) & (best["flow"] == flow)]
        hit = hit[hit["policy"] == policy]
    else:
        hit = _score(table, stage, dataset, flow, policy, steps, metric)
    return hit.iloc[0] if len(hit) else None


CONTROL_WORDS = "its control (the offline run continued as long, no env)"
# how the offline stages are named in headline rows and figures (in the figures' panel order)
STAGE_NAMES = {"bc": "BC", "fql": "FQL", "mfql": "MeanFlow-QL", "qc": "QC"}


SIDE_COLUMNS = ("", "_mean", "_ci_low", "_ci_high", "_final_distance")
HEADLINE_COLUMNS = [
    *("dataset", "stage", "metric", "question"),
    *(f"{side}{suffix}" for side in "ab" for suffix in SIDE_COLUMNS),
    *("difference", "holds", "criterion"),
]


def headline(table: pd.DataFrame, tolerance: float = 0.05, train: pd.DataFrame | None = None) -> pd.DataFrame:
    """The study's questions in numbers, one row each, per dataset:

    - MeanFlow at 1 step against ReFlow at its best number of steps (BC and FQL flows);
    - FQL's policies against the BC flow they started from and against the best BC policy;
    - ReFlow vs MeanFlow in RL (`rl_headline`, with `train`: the train summary, for updates/s);
    - online fine-tuning against its offline start (`online_headline`).

    Each dataset's `headline_metric` (normalized score, or success rate on OGBench tasks), with the
    final distance (when the env has it) at the same steps.
    """
    table = as_trained(table)
    best = best_steps(table)
    rows = []

    for dataset in sorted(table["dataset"].unique()):
        metric = headline_metric(table[table["dataset"] == dataset])
        for stage in sorted(table["stage"].unique()):
            ref = best[(best["stage"] == stage) & (best["dataset"] == dataset) & (best["flow"] == "reflow")]
            ref = ref[ref["policy"] == "flow"]
            mf = _score(table, stage, dataset, "meanflow", "flow", 1, metric)
            if len(ref) and len(mf):
                gap = float(mf["mean"].iloc[0] - ref["mean"].iloc[0])
                rows.append(
                    {
                        "dataset": dataset,
                        "stage": stage,
                        "metric": metric,
                        "question": "MeanFlow at 1 step minus ReFlow at its best steps",
                        **_side("a", table, mf.iloc[0]),
                        **_side("b", table, ref.iloc[0]),
                        "difference": gap,
                        "holds": bool(gap >= -tolerance),
                        "criterion": f"difference >= -{tolerance}",
                    }
                )
        if "fql" not in set(table["stage"]):
            continue
        bc = best[(best["stage"] == "bc") & (best["dataset"] == dataset)]
        if not len(bc):
            continue
        top = bc.loc[bc["mean"].idxmax()]
        # every other BC policy at the same mean: the best BC policy is a tie, said so
        others = bc[(bc["mean"] == top["mean"]) & (bc.index != top.name)]
        top_ties = [_label(r) for _, r in others.iterrows()]

        for _, fql in best[(best["stage"] == "fql") & (best["dataset"] == dataset)].iterrows():
            start = bc[(bc["flow"] == fql["flow"]) & (bc["policy"] == "flow")]
            refs = [("the BC flow it started from", r) for _, r in start.iterrows()]
            for name, ref in refs + [("the best BC policy", top)]:
                tied = top_ties if name == "the best BC policy" else []
                rows.append(
                    {
                        "dataset": dataset,
                        "stage": "fql",
                        "metric": metric,
                        "question": f"FQL {fql['flow']} ({fql['policy']} policy) minus {name}",
                        **_side("a", table, fql),
                        **_side("b", table, ref, tied),
                        "difference": float(fql["mean"] - ref["mean"]),
                        "holds": bool(fql["mean"] > ref["mean"]),
                        "criterion": "difference > 0",
                    }
                )
    rows += rl_headline(table, train)
    rows += online_headline(table, best)
    frame = pd.DataFrame(rows, columns=HEADLINE_COLUMNS)
    frame["difference"] = frame["difference"].astype(float).round(4)
    return frame


def _label(row) -> str:
    """'stage flow policy K=k' of a table row."""
    return f"{row['stage']} {row['flow']} {row['policy']} K={int(row['inference_steps'])}"


def _side(prefix: str, table: pd.DataFrame, row, tied: list[str] = ()) -> dict:
    """One side of a headline comparison as columns: `prefix` (its label: stage flow policy K, with any
    policies tied with it named), `prefix`_mean, _ci_low, _ci_high and _final_distance (metres, where
    the env has it)."""
    k = int(row["inference_steps"])
    d = _score(table, row["stage"], row["dataset"], row["flow"], row["policy"], k, "final_distance")
    return {
        prefix: " = ".join([_label(row), *tied]) + (" (tie)" if tied else ""),
        f"{prefix}_mean": float(row["mean"]),
        f"{prefix}_ci_low": float(row["ci_low"]),
        f"{prefix}_ci_high": float(row["ci_high"]),
        f"{prefix}_final_distance": float(d["mean"].iloc[0]) if len(d) else float("nan"),
    }
