"""The online fine-tuning figure (online): the acting policy's evaluations from the offline start on."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from myreinflow.analysis import curves
from myreinflow.analysis.figures import draw, style
from myreinflow.names import CONTROL_STAGES

# the line style of each online line: online stages solid, ReinFlow dashed, each control dotted
DASHES = {
    **{stage: (4, 2) if stage == "reinflow" else "" for stage in curves.ONLINE_LINES},
    **{control: (1, 1.5) for control in CONTROL_STAGES},
}


def online_color(stage: str, flow: str):
    """The colour of an online line: the offline method's it continues (ReinFlow: its flow's)."""
    algo = stage.partition("_")[0]
    return style.METHOD_COLORS.get((algo, flow), style.color(flow))


def _online_axes(ax, data: pd.DataFrame, x: str, xlabel: str, present: list, palette: dict, dashes: dict):
    """One panel: each method's evaluations against `x`, a dotted line at the offline start."""
    metric = data["metric"].iloc[0]
    seeds = int(data.groupby("method")["seed"].nunique().min())
    style_kw = dict(style="method", style_order=present, dashes=dashes)
    draw.method_lines(ax, data, x, present, palette, seeds, legend=x == "env_steps", **style_kw)
    ax.axvline(0, color="0.4", ls=":", lw=1)
    ax.annotate(
        "offline\nstart",
        (0, 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -3),
        textcoords="offset points",
        va="top",
        fontsize=8,
        color="0.3",
    )
    spread = f"{seeds} seeds, 95 % CI" if seeds > 1 else "one seed"
    dataset = data["dataset"].iloc[0]
    ax.set(xlabel=xlabel, ylabel=style.METRIC_LABELS.get(metric, metric), title=f"{dataset} ({spread})")
    if metric == "success":
        ax.set_ylim(-0.05, 1.05)


def plot_online(train: pd.DataFrame, out: str | Path) -> None:
    """Online fine-tuning per dataset (rows): the acting policy's evaluations against env steps and
    against wall-clock minutes, per method in the colour of the offline method it continues (solid
    online, dotted the control without the env, dashed ReinFlow), from the offline start."""
    curves.check(train, curves.TRAIN_COLUMNS, "train table")
    lines = curves.online_curves(train)
    style.theme()
    datasets = sorted(lines["dataset"].unique())
    methods = curves.online_methods(lines)
    pairs = list(zip(methods["method"], methods["stage"], methods["flow"], strict=True))
    palette = {m: online_color(stage, flow) for m, stage, flow in pairs}
    dashes = {m: DASHES[stage] for m, stage, _ in pairs}
    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets, strict=True):
        data = lines[lines["dataset"] == dataset]
        present = [m for m in methods["method"] if m in set(data["method"])]
        for ax, x, xlabel in (
            (row[0], "env_steps", "env steps of online fine-tuning (a control: its steps without the env)"),
            (row[1], "minutes", "wall-clock minutes (evaluations included)"),
        ):
            _online_axes(ax, data, x, xlabel, present, palette, dashes)
        if row[0].get_legend() is not None:
            sns.move_legend(row[0], "best", title="method · flow it started from", fontsize=8)
    fig.tight_layout()
    title = "Online fine-tuning from the offline policies: evaluations of the acting policy (without noise)"
    style.save(fig, out, title)
