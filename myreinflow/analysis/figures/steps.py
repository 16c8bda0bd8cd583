"""Figures against inference steps: policy quality (return_vs_steps) and latency (latency_vs_steps)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns

from myreinflow.analysis import curves
from myreinflow.analysis.figures import draw, style
from myreinflow.names import STAGE_NAMES


def plot_return(table: pd.DataFrame, out: str | Path) -> None:
    """Normalized score and task metric vs inference steps; rows: metrics, columns: dataset × stage."""
    curves.check(table, curves.SUMMARY_COLUMNS, "table")
    metrics = curves.score_metrics(table)
    style.theme()
    panels = curves.panels(table)
    # each panel shows its own stage's policies and, as the reference, its dataset's MLP BC baseline
    data = style.labelled(curves.steps_panels(table, metrics))
    g = sns.FacetGrid(
        data,
        row="metric",
        col="panel",
        row_order=metrics,
        col_order=list(panels["panel"]),
        sharey="row",
        margin_titles=True,
        height=3.2,
        aspect=1.2,
        **style.hue(data),
    )
    g.map_dataframe(draw.estimate, x="inference_steps")
    rows = table[table["metric"].isin(metrics)]
    draw.steps_axis(g, sorted(rows.loc[rows["policy"] == "flow", "inference_steps"].unique()))
    draw.label_rows(g, style.STEPS_LABEL, style.METRIC_LABELS)
    g.add_legend(title="policy")
    title = (
        "Policy quality vs inference steps: ReFlow vs MeanFlow\n"
        "mean over evaluation episodes with 95 % bootstrap CI; a panel where the dataset has the metric"
    )
    style.save(g, out, title)


def plot_latency(evals: pd.DataFrame, out: str | Path) -> None:
    """Policy latency per action chunk vs inference steps, per stage; one line per flow and dataset."""
    keys = ("stage", "dataset", "flow", "policy", "seed", "inference_steps")
    curves.check(evals, (*keys, "latency_ms"), "eval table")
    style.theme()
    runs = style.labelled(curves.latency_runs(evals), mlp="MLP BC")
    names = runs["stage"].map(STAGE_NAMES)
    panels = [f"{s} policies" for s in curves.present(STAGE_NAMES.values(), names)]
    g = sns.FacetGrid(
        runs, col="panel", col_order=panels, sharey=True, height=3.6, aspect=1.3, **style.hue(runs)
    )
    # line: mean over datasets and seeds, band: their whole range
    g.map_dataframe(draw.aggregate, x="inference_steps", y="latency_ms", errorbar=("pi", 100))
    g.set(ylim=(0, None))  # after drawing, so the shared axis keeps every panel's data
    draw.steps_axis(g, sorted(runs.loc[runs["policy"] == "flow", "inference_steps"].unique()))
    g.set_titles(col_template="{col_name}")
    g.set_axis_labels(style.STEPS_LABEL, style.METRIC_LABELS["latency_ms"])
    g.add_legend(title="policy")
    title = (
        "Policy latency per action chunk (one call for the whole batch of vectorised envs)\n"
        "line: mean over datasets and seeds, band: their range"
    )
    style.save(g, out, title)
