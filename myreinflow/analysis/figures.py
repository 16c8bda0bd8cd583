"""Seaborn figures of a study, each from one summary CSV: one function per figure, one PNG each.

Colours are fixed per flow across every figure; baselines (MLP BC, FQL's one-step policy) are
horizontal reference lines, since they have no inference steps to sweep.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from myreinflow.analysis.aggregate import best_steps  # noqa: E402
from myreinflow.errors import UserError  # noqa: E402
from myreinflow.utils import atomic_path  # noqa: E402

_CB = sns.color_palette("colorblind")
FLOW_COLORS = {"reflow": _CB[0], "meanflow": _CB[1], "rectified": _CB[2], "mlp": _CB[7]}
FLOW_LABELS = {"reflow": "ReFlow", "meanflow": "MeanFlow", "rectified": "2-rectified flow", "mlp": "MLP"}
STAGE_LABELS = {"bc": "BC", "fql": "FQL"}
METRIC_LABELS = {
    "normalized_score": "normalized score",
    "final_distance": "final object–goal distance (m)\nlower is better",
    "success": "success rate",
    "return": "return",
    "latency_ms": "latency per action chunk (ms)",
}
STEPS_LABEL = "inference steps (NFE, log scale)"


def color(flow: str):
    return FLOW_COLORS.get(flow, _CB[4])


def label(flow: str) -> str:
    return FLOW_LABELS.get(flow, flow)


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def _grid(rows: int, cols: int, width: float, height: float):
    """Panels sharing the y axis along each row (one metric per row)."""
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey="row")


def _finish(fig, axes, out: str | Path, title: str, ncol: int = 4) -> None:
    """Title above the panels, one legend below them, then save."""
    fig.suptitle(title, y=1.04)
    fig.tight_layout()
    _legend(fig, axes, ncol)
    _save(fig, out)


def _save(fig, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def _legend(fig, axes, ncol: int = 4) -> None:
    """One legend for the figure, below the panels, without duplicate labels."""
    handles = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in ("flow", "policy", "dataset"):  # seaborn's legend subtitles
                handles.setdefault(lab, h)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol)


def _flow_lines(ax, data: pd.DataFrame, x: str, y: str, **kw) -> None:
    """One seaborn line per flow in the flow's colour (`kw`: marker, errorbar, style, ...)."""
    palette = {f: color(f) for f in data["flow"].unique()}
    sns.lineplot(data=data, x=x, y=y, hue="flow", palette=palette, ax=ax, **kw)


def _relabel(ax, suffix: str = "") -> None:
    """Seaborn labels its lines by flow key: show flow names instead, in the figure legend only."""
    for handle in ax.get_legend_handles_labels()[0]:
        key = handle.get_label()
        if key in FLOW_LABELS:
            handle.set_label(label(key) + suffix)
    if ax.get_legend():
        ax.get_legend().remove()


def _steps_axis(ax, steps) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(s) for s in steps])
    ax.minorticks_off()


def _reference(ax, rows: pd.DataFrame, color, style: str, text: str) -> None:
    """A horizontal line with its CI band: a policy without inference steps."""
    if not len(rows):
        return
    row = rows.iloc[0]
    ax.axhline(row["mean"], color=color, ls=style, lw=1.6, label=text)
    if np.isfinite(row["ci_low"]):
        ax.axhspan(row["ci_low"], row["ci_high"], color=color, alpha=0.12, lw=0)


def _check(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise UserError(f"{what} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise UserError(f"{what} has no rows")


def plot_return(table: pd.DataFrame, out: str | Path) -> None:
    """Normalized score and task metric vs inference steps; columns: dataset × stage."""
    _check(table, ("stage", "dataset", "flow", "policy", "inference_steps", "metric", "mean"), "table")
    _theme()
    metrics = [m for m in ("normalized_score", "final_distance") if m in set(table["metric"])]
    stages = [s for s in STAGE_LABELS if s in set(table["stage"])]
    panels = [(d, s) for d in sorted(table["dataset"].unique()) for s in stages]
    panels = [(d, s) for d, s in panels if ((table["dataset"] == d) & (table["stage"] == s)).any()]
    steps = sorted(table.loc[table["policy"] == "flow", "inference_steps"].unique())
    fig, axes = _grid(len(metrics), len(panels), 3.8, 3.2)
    for j, (dataset, stage) in enumerate(panels):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            rows = table[(table["dataset"] == dataset) & (table["metric"] == metric)]
            mine = rows[rows["stage"] == stage]
            for flow, r in mine[mine["policy"] == "flow"].groupby("flow", sort=False):
                r = r.sort_values("inference_steps")
                c = color(flow)
                ax.plot(r["inference_steps"], r["mean"], marker="o", color=c, label=f"{label(flow)} flow")
                ax.fill_between(r["inference_steps"], r["ci_low"], r["ci_high"], color=c, alpha=0.2, lw=0)
            for flow, r in mine[mine["policy"] == "onestep"].groupby("flow", sort=False):
                _reference(ax, r, color(flow), "--", f"FQL one-step policy (from {label(flow)})")
            mlp = rows[(rows["stage"] == "bc") & (rows["flow"] == "mlp")]
            _reference(ax, mlp, color("mlp"), ":", "MLP BC (reference)")
            _steps_axis(ax, steps)
            if i == 0:
                ax.set_title(f"{dataset} · {STAGE_LABELS[stage]}")
            ax.set_ylabel(METRIC_LABELS.get(metric, metric) if j == 0 else "")
            ax.set_xlabel(STEPS_LABEL if i == len(metrics) - 1 else "")
    _finish(
        fig,
        axes,
        out,
        "Return vs inference steps: ReFlow vs MeanFlow\nmean over evaluation episodes with 95 % bootstrap CI",
    )


def plot_latency(evals: pd.DataFrame, out: str | Path) -> None:
    """Policy latency per action chunk vs inference steps, per stage; one line per flow and dataset."""
    keys = ("stage", "dataset", "flow", "policy", "seed", "inference_steps")
    _check(evals, (*keys, "latency_ms"), "eval table")
    _theme()
    # latency is measured per batch of vectorised envs: one value per rollout, repeated on its episodes
    runs = evals.groupby(list(keys), as_index=False)["latency_ms"].mean()
    stages = [s for s in STAGE_LABELS if s in set(runs["stage"])]
    steps = sorted(runs.loc[runs["policy"] == "flow", "inference_steps"].unique())
    fig, axes = plt.subplots(1, len(stages), figsize=(4.6 * len(stages), 3.6), squeeze=False, sharey=True)
    for ax, stage in zip(axes[0], stages, strict=True):
        mine = runs[runs["stage"] == stage]
        flows = mine[mine["policy"] == "flow"]
        _flow_lines(ax, flows, "inference_steps", "latency_ms", marker="o", errorbar=("pi", 100))
        for flow, r in mine[mine["policy"] != "flow"].groupby("flow"):
            what = "MLP BC" if flow == "mlp" else f"FQL one-step policy (from {label(flow)})"
            style = ":" if flow == "mlp" else "--"
            ax.axhline(r["latency_ms"].mean(), color=color(flow), ls=style, label=what)
        _relabel(ax, " flow")
        ax.set_ylim(0, None)
        _steps_axis(ax, steps)
        ax.set_title(f"{STAGE_LABELS[stage]} policies")
        ax.set_xlabel(STEPS_LABEL)
        ax.set_ylabel(METRIC_LABELS["latency_ms"])
    _finish(
        fig,
        axes,
        out,
        "Policy latency per action chunk (one call for the whole batch of vectorised envs)\n"
        "line: mean over datasets and seeds, band: their range",
        ncol=3,
    )


VARIANTS = {("bc", "flow"): "BC flow", ("fql", "flow"): "FQL flow", ("fql", "onestep"): "FQL one-step"}


def plot_fql(table: pd.DataFrame, out: str | Path) -> None:
    """BC → FQL: each flow's BC policy, its FQL-fine-tuned flow and FQL's one-step policy, as points
    with CIs joined per flow; columns: datasets with an FQL stage."""
    _check(table, ("stage", "dataset", "flow", "policy", "inference_steps", "metric", "mean"), "table")
    if "fql" not in set(table["stage"]):
        raise UserError("table has no fql rows; the BC → FQL figure needs the fql stage")
    _theme()
    best = best_steps(table).set_index(["stage", "policy", "dataset", "flow"])["inference_steps"]
    rows = table.set_index(["stage", "policy", "dataset", "flow", "inference_steps", "metric"])
    metrics = [m for m in ("normalized_score", "final_distance") if m in set(table["metric"])]
    datasets = sorted(table.loc[table["stage"] == "fql", "dataset"].unique())
    flows = [f for f in FLOW_LABELS if f in set(table.loc[table["stage"] == "fql", "flow"])]
    fig, axes = _grid(len(metrics), len(datasets), 4.8, 3.4)
    for j, dataset in enumerate(datasets):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            for f, flow in enumerate(flows):
                xs, points = [], []
                for x, (stage, policy) in enumerate(VARIANTS):
                    if (stage, policy, dataset, flow) not in best.index:
                        continue
                    k = int(best[(stage, policy, dataset, flow)])
                    xs.append(x + 0.12 * (f - (len(flows) - 1) / 2))  # dodge the flows
                    points.append((k, policy, rows.loc[(stage, policy, dataset, flow, k, metric)]))
                means = [p[2]["mean"] for p in points]
                ax.plot(xs, means, color=color(flow), lw=1, alpha=0.6)
                for x, (k, policy, row) in zip(xs, points, strict=True):
                    err = [[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]]
                    ax.errorbar(
                        x, row["mean"], yerr=err, fmt="o", color=color(flow), capsize=3, label=label(flow)
                    )
                    text = f"K={k}" if policy == "flow" else "1 step"
                    ax.annotate(
                        text, (x, row["mean"]), xytext=(5, -3), textcoords="offset points", fontsize=7
                    )
            mlp = table[
                (table["stage"] == "bc")
                & (table["flow"] == "mlp")
                & (table["dataset"] == dataset)
                & (table["metric"] == metric)
            ]
            _reference(ax, mlp, color("mlp"), ":", "MLP BC (reference)")
            ax.set_xticks(range(len(VARIANTS)))
            ax.set_xticklabels(VARIANTS.values())
            ax.set_xlim(-0.5, len(VARIANTS) - 0.5)
            if i == 0:
                ax.set_title(dataset)
            ax.set_ylabel(METRIC_LABELS.get(metric, metric) if j == 0 else "")
    _finish(
        fig,
        axes,
        out,
        "BC → FQL per dataset and flow: mean and 95 % bootstrap CI\n"
        "flows at their best inference steps K (annotated; chosen by normalized score)",
        ncol=len(flows) + 1,
    )


LOSS_COLUMNS = ("train/flow_mse", "train/loss")  # the first one a row has is its training loss


# evaluation columns of the train CSVs → the policy they evaluate (FQL logs its fine-tuned flow apart)
EVAL_COLUMNS = {"eval/normalized_score": "policy", "eval_flow/normalized_score": "fine-tuned flow"}


def _eval_curves(train: pd.DataFrame) -> pd.DataFrame:
    """Long frame of the evaluation scores logged during training: step, flow, policy, score."""
    frames = []
    for col, what in EVAL_COLUMNS.items():
        if col not in train:
            continue
        rows = train.loc[train[col].notna(), ["dataset", "stage", "flow", "seed", "step"]].copy()
        rows["score"] = train.loc[rows.index, col]
        if what == "policy":  # BC: the policy itself; FQL: its one-step policy
            what = np.where(rows["stage"] == "fql", "one-step policy", "BC policy")
        rows["policy"] = what
        frames.append(rows)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_curves(train: pd.DataFrame, out: str | Path) -> None:
    """Training loss and evaluation score vs gradient step; columns: dataset × stage."""
    _check(train, ("stage", "dataset", "flow", "seed", "step"), "train table")
    _theme()
    train = train.copy()
    loss = pd.Series(np.nan, index=train.index)
    for col in LOSS_COLUMNS:
        if col in train:
            loss = loss.fillna(train[col])
    train["loss"] = loss
    evals = _eval_curves(train)
    rows = {"loss": "training loss (log scale)", "score": "eval normalized score"}
    if evals.empty:
        rows.pop("score")
    stages = [s for s in STAGE_LABELS if s in set(train["stage"])]
    panels = [(d, s) for d in sorted(train["dataset"].unique()) for s in stages]
    panels = [(d, s) for d, s in panels if ((train["dataset"] == d) & (train["stage"] == s)).any()]
    fig, axes = _grid(len(rows), len(panels), 3.8, 3.0)
    for j, (dataset, stage) in enumerate(panels):
        for i, metric in enumerate(rows):
            ax = axes[i, j]
            frame = train if metric == "loss" else evals
            data = frame[(frame["dataset"] == dataset) & (frame["stage"] == stage) & frame[metric].notna()]
            if len(data):
                _flow_lines(
                    ax,
                    data,
                    "step",
                    metric,
                    style=None if metric == "loss" else "policy",
                    markers=metric != "loss",
                    marker="." if metric == "loss" else None,  # short runs log a few points only
                    errorbar=None,
                )
                _relabel(ax)
            if metric == "loss":
                ax.set_yscale("log")
            if i == 0:
                ax.set_title(f"{dataset} · {STAGE_LABELS[stage]}")
            ax.set_ylabel(rows[metric] if j == 0 else "")
            ax.set_xlabel("gradient step of the stage" if i == len(rows) - 1 else "")
    _finish(
        fig,
        axes,
        out,
        "Learning curves\nloss: flow-matching MSE of the (BC or fine-tuned) flow, action MSE for the MLP; "
        "eval: rollouts during training",
    )


TOY_METRICS = {
    "swd": "sliced Wasserstein distance",
    "w2": "Wasserstein-2 distance",
    "mmd2": "MMD²",
    "straightness": "path deviation (0 = straight)",
}
TOY_REFERENCES = {"noise": ("N(0, I) noise", "--"), "data": ("second draw of the target (floor)", ":")}


def plot_toy2d(toy: pd.DataFrame, out: str | Path) -> None:
    """2D study: each metric vs sampling steps per flow, with the noise and target-resample levels;
    rows: distributions, columns: metrics."""
    _check(toy, ("distribution", "flow", "inference_steps", "metric", "value"), "toy2d table")
    _theme()
    models = toy[~toy["flow"].isin(list(TOY_REFERENCES))]
    metrics = [m for m in TOY_METRICS if m in set(models["metric"])]
    metrics += sorted(set(models["metric"]) - set(metrics))
    distributions = sorted(models["distribution"].unique())
    steps = sorted(models["inference_steps"].unique())
    fig, axes = plt.subplots(
        len(distributions),
        len(metrics),
        figsize=(3.6 * len(metrics), 3.0 * len(distributions)),
        squeeze=False,
    )
    for i, dist in enumerate(distributions):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            rows = toy[(toy["distribution"] == dist) & (toy["metric"] == metric)]
            mine = rows[~rows["flow"].isin(list(TOY_REFERENCES))]
            errorbar = ("ci", 95) if mine["seed"].nunique() > 1 else None
            _flow_lines(ax, mine, "inference_steps", "value", marker="o", errorbar=errorbar)
            for flow, (text, style) in TOY_REFERENCES.items():
                ref = rows.loc[rows["flow"] == flow, "value"]
                if len(ref) and metric != "straightness":
                    ax.axhline(ref.mean(), color="0.4", ls=style, lw=1.2, label=text)
            _relabel(ax)
            if metric != "straightness":  # a one-step path is straight: deviation 0, no log scale
                ax.set_yscale("log")
            _steps_axis(ax, steps)
            ax.set_title(f"{dist} · {TOY_METRICS.get(metric, metric)}")
            ax.set_xlabel(STEPS_LABEL if i == len(distributions) - 1 else "")
            ax.set_ylabel("distances: log scale" if j == 0 else "")
    _finish(
        fig,
        axes,
        out,
        "2D study: distance to the target distribution vs sampling steps (lower is better)\n"
        "samples from the same noise for every flow; grey lines: reference levels",
    )


FIGURES = {
    "return": plot_return,
    "latency": plot_latency,
    "fql": plot_fql,
    "curves": plot_curves,
    "toy2d": plot_toy2d,
}
