"""The data each figure draws, shaped from the summary CSVs: plain pandas, no matplotlib.

Each function takes summary frames (table.csv, eval.csv, train.csv, toy2d.csv) and returns the long
frame (or frames) one figure family plots, so that what a figure shows can be tested without drawing it.
Colours, line styles and legend layout are the figures' own (`analysis.figures.style`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from myreinflow.analysis.runs import training_speed
from myreinflow.analysis.tables import as_trained, best_steps, policy_rows
from myreinflow.errors import UserError
from myreinflow.names import CONTROL_STAGES, CRITIC_METHODS, FLOW_LABELS, ONLINE_STAGES, STAGE_NAMES

# the rows of the return and BC → FQL figures (success: OGBench's headline; Pusher's distance < 0.1 m)
SCORE_METRICS = ("normalized_score", "success", "final_distance")
# the columns of table.csv that its figures read
SUMMARY_COLUMNS = (
    "stage",
    "dataset",
    "flow",
    "policy",
    "inference_steps",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
)
TRAIN_COLUMNS = ("stage", "dataset", "flow", "seed", "step", "wall_s")


def label(flow: str) -> str:
    """A flow's (or baseline's) name in legends and titles."""
    return FLOW_LABELS.get(flow, flow)


def check(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Refuses, with one line, a frame without `columns` or without rows (`what`: its name)."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise UserError(f"{what} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise UserError(f"{what} has no rows")


def present(order, values) -> list:
    """The items of `order` found in `values`, in that order: facets only where there is data."""
    values = set(values)
    return [v for v in order if v in values]


def score_metrics(table: pd.DataFrame) -> list[str]:
    """The SCORE_METRICS a table has, in that order (the rows of the return and BC → FQL figures)."""
    metrics = present(SCORE_METRICS, table["metric"])
    if not metrics:
        raise UserError(f"table has no {' or '.join(SCORE_METRICS)} rows")
    return metrics


def panels(frame: pd.DataFrame) -> pd.DataFrame:
    """The (dataset, stage) pairs of a frame's offline stages in figure order, with their titles
    (`panel`: 'dataset · stage name')."""
    pairs = frame.loc[frame["stage"].isin(list(STAGE_NAMES)), ["dataset", "stage"]].drop_duplicates()
    pairs = pairs.assign(rank=pairs["stage"].map(list(STAGE_NAMES).index)).sort_values(["dataset", "rank"])
    return pairs.assign(panel=pairs["dataset"].astype(str) + " · " + pairs["stage"].map(STAGE_NAMES))


def steps_panels(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The rows of the return-vs-steps figure: each (dataset, stage) panel's own policies in `metrics`
    and, as its reference, its dataset's MLP BC baseline; `panel` names the panel, `stage_of_row` is the
    stage a row comes from."""
    rows = table[table["metric"].isin(metrics)]
    data = panels(table).merge(rows, on="dataset", suffixes=("", "_of_row"))
    return data[(data["stage"] == data["stage_of_row"]) | (data["flow"] == "mlp")]


def latency_runs(evals: pd.DataFrame) -> pd.DataFrame:
    """Latency per action chunk of each offline-stage rollout (stage, dataset, flow, policy, seed,
    inference_steps): latency is timed per batch of vectorised envs, one value per rollout repeated
    on its episodes, so the mean over its episodes; `panel` names the stage's panel."""
    keys = ["stage", "dataset", "flow", "policy", "seed", "inference_steps"]
    runs = evals.groupby(keys, as_index=False)["latency_ms"].mean()
    runs = runs[runs["stage"].isin(list(STAGE_NAMES))]
    return runs.assign(panel=runs["stage"].map(STAGE_NAMES) + " policies")


# the points of the BC → FQL figure, left to right: (stage, policy) → its name on the x axis
VARIANTS = {("bc", "flow"): "BC flow", ("fql", "flow"): "FQL flow", ("fql", "onestep"): "FQL one-step"}
DODGE = 0.22  # x distance between the flows of one variant: room for their K labels side by side


def bc_to_fql(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """The BC → FQL figure's data: (points, mlp, datasets, metrics). `points`: each flow's VARIANTS at
    their best steps K (chosen by the dataset's headline metric, shown with every metric at K), at x =
    the variant's index, dodged by flow; `mlp`: the MLP BC rows of the same datasets and metrics; the
    datasets with an FQL stage and the metrics they have."""
    keys = ["stage", "policy", "dataset", "flow", "inference_steps"]
    fql = table[table["stage"] == "fql"]
    datasets, flows = sorted(fql["dataset"].unique()), present(FLOW_LABELS, fql["flow"])
    metrics = score_metrics(table[table["dataset"].isin(datasets)])  # rows only for what is plotted
    variants = pd.DataFrame([(*v, i) for i, v in enumerate(VARIANTS)], columns=["stage", "policy", "variant"])
    best = best_steps(table)[keys].merge(variants, on=["stage", "policy"])
    best = best[best["dataset"].isin(datasets) & best["flow"].isin(flows)]
    points = best.merge(table[table["metric"].isin(metrics)], on=keys)
    dodge = DODGE * (points["flow"].map(flows.index) - (len(flows) - 1) / 2)
    points = points.assign(x=points["variant"] + dodge)
    mlp = table[(table["stage"] == "bc") & (table["flow"] == "mlp") & table["dataset"].isin(datasets)]
    return points, mlp[mlp["metric"].isin(metrics)], datasets, metrics


LOSS_COLUMNS = ("train/flow_mse", "train/loss")  # the first one a row has is its training loss
# the rows of the learning curves
LOSS, SCORE = "training loss (log scale)", "eval normalized score\n(success rate on OGBench)"
# evaluation columns of the train CSVs → the policy they evaluate (FQL logs its fine-tuned flow apart);
# where the data has no normalized score (OGBench tasks), the eval row shows the success rate
EVAL_COLUMNS = {"eval/normalized_score": "policy", "eval_flow/normalized_score": "fine-tuned flow"}
# eval points of neighbouring (flow, policy) pairs are this fraction of a panel's steps apart
CURVE_DODGE = 0.02


# what the `eval/` columns of a critic-based stage's runs evaluate
ACTING_POLICIES = {"fql": "one-step policy", "mfql": "one-step policy", "qc": "best-of-N flow"}


def learning_curves(train: pd.DataFrame) -> pd.DataFrame:
    """Long frame of the learning curves: one `value` per logged step, with its `quantity` (LOSS or
    SCORE) and `policy` (what was evaluated; the loss is its own)."""
    keys = ["dataset", "stage", "flow", "seed", "step"]
    loss = pd.Series(np.nan, index=train.index)
    for col in LOSS_COLUMNS:
        if col in train:
            loss = loss.fillna(train[col])
    frames = [train[keys].assign(value=loss, quantity=LOSS, policy="training loss")]
    for col, what in EVAL_COLUMNS.items():
        success = col.replace("normalized_score", "success")
        if col in train or success in train:
            if what == "policy":  # BC: the policy itself; the FQL family: its acting policy
                what = train["stage"].map(ACTING_POLICIES).fillna("BC policy").to_numpy()
            value = train.get(col, pd.Series(np.nan, index=train.index))
            value = value.fillna(train[success]) if success in train else value
            frames.append(train[keys].assign(value=value, quantity=SCORE, policy=what))
    curves = pd.concat(frames, ignore_index=True)
    return curves[curves["value"].notna()]


def dodge(curves: pd.DataFrame) -> pd.DataFrame:
    """Evaluation points of different flows (or policies) often coincide (the same step, a success of 0):
    each (flow, policy) pair's points move along x by its own multiple of CURVE_DODGE × the panel's last
    step, centred, so that none hides another. Losses stay where they are."""
    score = curves["quantity"] == SCORE
    pairs = sorted(set(zip(curves.loc[score, "flow"], curves.loc[score, "policy"], strict=True)))
    index = pd.Series(list(zip(curves["flow"], curves["policy"], strict=True)), index=curves.index)
    offset = index.map({pair: i - (len(pairs) - 1) / 2 for i, pair in enumerate(pairs)})
    span = curves.groupby("panel")["step"].transform("max")
    return curves.assign(step=curves["step"] + (CURVE_DODGE * span * offset).where(score, 0.0))


def method_speed(train: pd.DataFrame) -> pd.DataFrame:
    """Each (stage, dataset, flow)'s training updates per second, the mean over its seeds' runs."""
    keys = ["stage", "dataset", "flow"]
    return training_speed(train).groupby(keys, as_index=False)["updates_per_s"].mean()


def rl_curves(train: pd.DataFrame, speed: pd.DataFrame) -> pd.DataFrame:
    """Evaluations during training of the critic-based methods (CRITIC_METHODS), one row per run and
    evaluation: `method`, `step`, `seconds` (the method's training time at that step, evaluations left
    out: step / its updates per second `speed`, the mean over its seeds, so that seeds share their x
    values) and `value` (success, or the normalized score where there is none)."""
    runs = train.merge(speed, on=["stage", "dataset", "flow"])
    frames = []
    for (stage, flow), (_, name, _) in CRITIC_METHODS.items():
        rows = runs[(runs["stage"] == stage) & (runs["flow"] == flow)]
        success = rows["eval/success"] if "eval/success" in rows else pd.Series(np.nan, index=rows.index)
        score = rows.get("eval/normalized_score", pd.Series(np.nan, index=rows.index))
        has_success = success.notna().groupby([rows["dataset"], rows["seed"]]).transform("any")
        value = success.where(has_success, score)
        metric = np.where(has_success, "success", "normalized_score")
        rows = rows.assign(
            method=name, metric=metric, value=value, seconds=rows["step"] / rows["updates_per_s"]
        )
        frames.append(
            rows.loc[value.notna(), ["dataset", "seed", "method", "metric", "step", "seconds", "value"]]
        )
    return pd.concat(frames, ignore_index=True)


def rl_datasets(curves: pd.DataFrame) -> list[str]:
    """The datasets with two or more critic-based methods in `rl_curves`: the rows of the RL figure."""
    counts = curves.groupby("dataset")["method"].nunique() if len(curves) else pd.Series(dtype=int)
    datasets = sorted(counts[counts > 1].index)
    if not datasets:
        raise UserError("train table has no dataset with two critic-based methods (fql, mfql and qc runs)")
    return datasets


def rl_finals(table: pd.DataFrame, speed: pd.DataFrame, dataset: str, metric: str) -> pd.DataFrame:
    """The final evaluation of each critic-based method on `dataset` in `metric`, as it acts (its
    CRITIC_METHODS policy and steps, its run's best-of-N), where it has a training speed: the table row
    with its `method` and bar `label` (its name, wrapped, and its updates per second)."""
    table = as_trained(table)
    rate = speed.set_index(["stage", "dataset", "flow"])["updates_per_s"]
    final = []
    for (stage, flow), (policy, name, steps) in CRITIC_METHODS.items():
        hit = policy_rows(table, stage, dataset, flow, policy, steps, metric)
        if len(hit) and (stage, dataset, flow) in rate:
            wrapped = name.replace(" from ", " from\n").replace(" over ", " over\n")  # bars side by side
            text = f"{wrapped}\n{rate[(stage, dataset, flow)]:.1f}/s"
            final.append(hit.iloc[0].to_dict() | {"method": name, "label": text})
    return pd.DataFrame(final)


# what an online curve shows, by preference: Pusher is judged by final distance, OGBench by success
ONLINE_METRICS = ("final_distance", "success", "normalized_score")
# the online figure's lines: each online stage and each control (stage → its name), in legend order
ONLINE_LINES = {
    **{stage: name for stage, (name, _) in ONLINE_STAGES.items()},
    **{c: f"{ONLINE_STAGES[o][0].removesuffix(' online')}, control" for c, o in CONTROL_STAGES.items()},
}


def _online_run(run: pd.DataFrame) -> pd.DataFrame | None:
    """One online run's evaluations from its offline start on (see `online_curves`), or None."""
    metric = next((m for m in ONLINE_METRICS if run.get(f"eval/{m}", pd.Series()).notna().any()), None)
    if metric is None:  # a run without evaluations yet
        return None
    env = run["online/env_steps"].fillna(0)  # offline rows (online stages): before step 0
    evals = run[run[f"eval/{metric}"].notna()].assign(env_steps=env)
    start = evals[evals["env_steps"] == 0].tail(1)  # the offline policy's last evaluation
    evals = pd.concat([start, evals[evals["env_steps"] > 0]])
    seconds = evals["wall_s"] - start["wall_s"].iloc[0] if len(start) else np.nan
    return pd.DataFrame(
        {
            "metric": metric,
            "env_steps": evals["env_steps"].to_numpy(),
            "seconds": np.asarray(seconds, dtype=float),
            "value": evals[f"eval/{metric}"].to_numpy(),
        }
    )


def online_curves(train: pd.DataFrame) -> pd.DataFrame:
    """Evaluations of the online runs (ONLINE_LINES: the online stages and their controls), one row per
    run and evaluation, from the offline start (step 0 of the online phase: an online run's last offline
    evaluation, a ReinFlow run's first) on: `method` (stage and flow), `env_steps` (a control's: the
    phase's steps, none in the env), `minutes` (env_steps at the method's mean steps per second over its
    seeds, evaluations included, so that seeds share their x values), `metric` and `value`."""
    frames = []
    for stage, name in ONLINE_LINES.items():
        runs = train[train["stage"] == stage]
        if not len(runs) or "online/env_steps" not in runs:
            continue
        for (dataset, flow, seed), run in runs.sort_values("step").groupby(["dataset", "flow", "seed"]):
            rows = _online_run(run)
            if rows is not None:
                what = dict(
                    dataset=dataset, seed=seed, stage=stage, flow=flow, method=f"{name} · {label(flow)}"
                )
                frames.append(rows.assign(**what)[["dataset", "seed", "stage", "flow", "method", *rows]])
    if not frames:
        raise UserError(f"train table has no evaluations of online runs ({', '.join(ONLINE_LINES)} stages)")
    curves = pd.concat(frames, ignore_index=True)
    keys = ["stage", "dataset", "flow"]
    last = curves.sort_values("env_steps").groupby([*keys, "seed"]).tail(1)
    rate = (last["env_steps"] / last["seconds"]).groupby([last[k] for k in keys]).mean().rename("rate")
    curves = curves.join(rate, on=keys)
    return curves.assign(minutes=curves["env_steps"] / curves["rate"] / 60)


def online_methods(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per method of `online_curves` (its stage and flow), in legend order: by flow, then by
    stage in ONLINE_LINES order."""
    order = {k: i for i, k in enumerate([*ONLINE_LINES, *FLOW_LABELS])}
    return curves.drop_duplicates("method").sort_values(["flow", "stage"], key=lambda c: c.map(order))


TOY_METRICS = {
    "swd": "sliced Wasserstein distance",
    "w2": "Wasserstein-2 distance",
    "mmd2": "MMD²",
    "straightness": "path deviation (0 = straight)",
}
# levels of the 2D study without a model: legend entry and line style
TOY_REFERENCES = {"noise": ("N(0, I) noise", "--"), "data": ("second draw of the target (floor)", ":")}


def toy2d_lines(toy: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The 2D-study figure's rows and its metrics (columns: TOY_METRICS first): each model's and each
    reference level's value with its legend `label` and line style `ls`; no reference level for the
    path deviation (a one-step path is straight: deviation 0)."""
    refs = toy["flow"].isin(list(TOY_REFERENCES))
    models = toy[~refs]
    metrics = present(TOY_METRICS, models["metric"]) + sorted(set(models["metric"]) - set(TOY_METRICS))
    data = toy[~(refs & (toy["metric"] == "straightness"))]
    ref = data["flow"].map(TOY_REFERENCES)  # (legend entry, line style); NaN for a flow
    return data.assign(label=ref.str[0].fillna(data["flow"].map(label)), ls=ref.str[1].fillna("-")), metrics
