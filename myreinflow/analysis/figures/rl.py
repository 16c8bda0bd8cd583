"""Figures of the offline RL stages: BC → FQL (bc_to_fql), the learning curves (learning_curves) and
ReFlow vs MeanFlow in RL (reflow_vs_meanflow_rl)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from myreinflow.analysis import curves
from myreinflow.analysis.figures import draw, style
from myreinflow.errors import UserError
from myreinflow.names import CRITIC_METHODS, FLOW_LABELS


def _points(data: pd.DataFrame, color, label: str, ls: str) -> None:
    """One flow's BC → FQL path in one panel (points with 95 % CI bars, joined), or the MLP reference."""
    ax = plt.gca()
    if ls != "-":
        row = data.iloc[0]
        draw.reference(ax, row["mean"], (row["ci_low"], row["ci_high"]), color, ls, label)
        return
    data = data.sort_values("x")
    err = [(data["mean"] - data["ci_low"]).clip(lower=0), (data["ci_high"] - data["mean"]).clip(lower=0)]
    ax.errorbar(data["x"], data["mean"], yerr=err, fmt="-o", color=color, lw=1.2, capsize=3, label=label)


def _k_labels(g: sns.FacetGrid, points: pd.DataFrame) -> None:
    """Each point's K as a minor tick label right under it, in its flow's colour, with the variant names
    one line lower: labels on their own dodged x positions cannot overlap, unlike annotations."""
    variants = curves.VARIANTS
    g.set(xticks=range(len(variants)), xticklabels=list(variants.values()), xlim=(-0.5, len(variants) - 0.5))
    g.tick_params(axis="x", which="major", pad=14)
    for dataset, ax in zip(g.col_names, g.axes[-1], strict=True):
        ticks = points[points["dataset"] == dataset].drop_duplicates("x").sort_values("x")
        ax.xaxis.remove_overlapping_locs = False  # a middle flow's K sits right on its variant's tick
        ax.set_xticks(ticks["x"], [f"{k}" for k in ticks["inference_steps"]], minor=True, fontsize=8)
        for text, c in zip(ax.get_xticklabels(minor=True), ticks["color"], strict=True):
            text.set_color(c)


def plot_fql(table: pd.DataFrame, out: str | Path) -> None:
    """BC → FQL: each flow's BC policy, its FQL-fine-tuned flow and FQL's one-step policy, as points
    with CIs joined per flow; rows: metrics, columns: datasets with an FQL stage."""
    curves.check(table, curves.SUMMARY_COLUMNS, "table")
    if "fql" not in set(table["stage"]):
        raise UserError("table has no fql rows; the BC → FQL figure needs the fql stage")
    style.theme()
    points, mlp, datasets, metrics = curves.bc_to_fql(table)
    # one solid line per flow through its three variants
    points = points.assign(
        label=points["flow"].map(curves.label), color=points["flow"].map(style.color), ls="-"
    )
    data = pd.concat([points, style.labelled(mlp)], ignore_index=True)
    g = sns.FacetGrid(
        data,
        row="metric",
        col="dataset",
        row_order=metrics,
        col_order=datasets,
        sharex="col",
        sharey="row",
        margin_titles=True,
        height=3.4,
        aspect=1.4,
        **style.hue(data),
    )
    g.map_dataframe(_points)
    _k_labels(g, points)
    draw.label_rows(g, "coloured numbers: each point's best inference steps K", style.METRIC_LABELS)
    g.add_legend(title="flow")
    title = (
        "BC → FQL per dataset and flow: mean and 95 % bootstrap CI\n"
        "flows at their best inference steps K (numbers under the points; by normalized score, or success)"
    )
    style.save(g, out, title)


# markers of the learning curves: FQL's one-step policy as circles, its fine-tuned flow as crosses
CURVE_MARKERS = {"training loss": ".", "BC policy": "o", "one-step policy": "o", "best-of-N flow": "o"}
CURVE_MARKERS["fine-tuned flow"] = "X"


def plot_curves(train: pd.DataFrame, out: str | Path) -> None:
    """Training loss and evaluation score vs gradient step; rows: those two, columns: dataset × stage."""
    curves.check(train, ("stage", "dataset", "flow", "seed", "step"), "train table")
    style.theme()
    panels = curves.panels(train)
    lines = curves.dodge(curves.learning_curves(train).merge(panels, on=["dataset", "stage"]))
    flows = curves.present([*FLOW_LABELS, *sorted(set(lines["flow"]) - set(FLOW_LABELS))], lines["flow"])
    styles = curves.present(CURVE_MARKERS, lines["policy"])
    g = sns.relplot(
        lines.assign(flow=lines["flow"].map(curves.label)),  # legend entries: flow names, not keys
        kind="line",
        x="step",
        y="value",
        row="quantity",
        col="panel",
        row_order=curves.present([curves.LOSS, curves.SCORE], lines["quantity"]),
        col_order=list(panels["panel"]),
        hue="flow",
        hue_order=[curves.label(f) for f in flows],
        palette={curves.label(f): style.color(f) for f in flows},
        style="policy",
        style_order=styles,
        markers={s: CURVE_MARKERS[s] for s in styles},  # short runs log a few points only
        dashes=False,
        errorbar=("ci", 95),  # over training seeds (none with one seed)
        n_boot=1000,
        seed=0,
        height=3.0,
        aspect=1.25,
        facet_kws=dict(sharex="col", sharey="row", margin_titles=True),  # each stage counts its own steps
    )
    draw.label_rows(g, "gradient step of the stage", {})
    for (quantity, _), ax in g.axes_dict.items():
        if quantity == curves.LOSS:
            ax.set_yscale("log")
    title = (
        "Learning curves\nloss: flow-matching MSE of the (BC or fine-tuned) flow, action MSE for the MLP; "
        "bands: 95 % CI over seeds\neval: rollouts during training; points of different flows set apart "
        f"along x by {curves.CURVE_DODGE:.0%} of the axis"
    )
    style.save(g, out, title)


# each critic-based method's legend name → its colour
METHOD_PALETTE = {name: style.METHOD_COLORS[method] for method, (_, name, _) in CRITIC_METHODS.items()}


def _final_bars(ax, bars: pd.DataFrame, dataset: str, metric: str) -> None:
    """The final evaluation of each method on one dataset (`curves.rl_finals`): bars with 95 % CIs."""
    if not len(bars):
        ax.set_axis_off()
        return
    ax.bar(bars["label"], bars["mean"], color=[METHOD_PALETTE[m] for m in bars["method"]])
    ax.errorbar(
        bars["label"],
        bars["mean"],
        yerr=[bars["mean"] - bars["ci_low"], bars["ci_high"] - bars["mean"]],
        fmt="none",
        color="black",
        capsize=3,
    )
    ax.set(
        ylabel=style.METRIC_LABELS.get(metric, metric),
        xlabel="acting policy (training updates per second)",
        title=f"{dataset} · final evaluation ({int(bars['n'].min())} episodes, 95 % CI)",
    )


def _rl_row(row, data: pd.DataFrame, table: pd.DataFrame, speed: pd.DataFrame, dataset: str) -> None:
    """One dataset's panels: success during training against updates and against training seconds,
    and the final evaluation."""
    present = curves.present(list(METHOD_PALETTE), data["method"])
    metric = data["metric"].iloc[0]
    seeds = data.groupby("method")["seed"].nunique().min()
    for ax, x, xlabel in (
        (row[0], "step", "gradient updates"),
        (row[1], "seconds", "training time (s, evaluations left out)"),
    ):
        draw.method_lines(ax, data, x, present, METHOD_PALETTE, seeds, legend=ax is row[0])
        during = "during training" + (f" ({seeds} seeds, 95 % CI)" if seeds > 1 else " (one seed)")
        ax.set(xlabel=xlabel, ylabel=style.METRIC_LABELS.get(metric, metric), title=f"{dataset} · {during}")
    _final_bars(row[2], curves.rl_finals(table, speed, dataset, metric), dataset, metric)
    if metric == "success":  # the whole range of a rate, as in the other figures
        for ax in row:
            ax.set_ylim(-0.05, 1.05)
    if row[0].get_legend() is not None:
        sns.move_legend(row[0], "upper left", title="method (acting policy)")


def plot_rl(train: pd.DataFrame, table: pd.DataFrame, out: str | Path) -> None:
    """ReFlow vs MeanFlow in RL, per dataset (rows) with two or more critic-based methods: the acting
    policy's evaluation success during training against gradient updates and against training seconds,
    and its final evaluation (1 step, 95 % interval) labelled with the method's training updates/s."""
    curves.check(train, curves.TRAIN_COLUMNS, "train table")
    curves.check(table, curves.SUMMARY_COLUMNS, "table")
    # each method's updates per second, the mean over its seeds: the time axis and the final bars' labels
    speed = curves.method_speed(train)
    lines = curves.rl_curves(train, speed)
    datasets = curves.rl_datasets(lines)
    style.theme()
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 3.8 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets, strict=True):
        _rl_row(row, lines[lines["dataset"] == dataset], table, speed, dataset)
    fig.tight_layout()
    present = curves.present(list(METHOD_PALETTE), lines[lines["dataset"].isin(datasets)]["method"])
    title = f"ReFlow vs MeanFlow in RL: {', '.join(present)}\n"
    style.save(fig, out, title + "success of each acting policy as it acts (its flow steps and best-of-N)")
