"""The 2D study's figure (toy2d_metrics): distance to the target distribution against sampling steps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns

from myreinflow.analysis import curves
from myreinflow.analysis.figures import draw, style
from myreinflow.names import FLOW_LABELS

REFERENCE_COLOR = (0.4, 0.4, 0.4)  # the reference levels (no model) in grey


def plot_toy2d(toy: pd.DataFrame, out: str | Path, subtitle: str = "") -> None:
    """2D study: each metric vs sampling steps per flow, with the noise and target-resample levels;
    rows: distributions, columns: metrics. The pipeline's figure of every distribution and the
    `metrics.png` of one `myreinflow toy2d` run (`subtitle`: that run's budget and seed)."""
    curves.check(toy, ("distribution", "flow", "inference_steps", "metric", "value"), "toy2d table")
    style.theme()
    models = toy[~toy["flow"].isin(list(curves.TOY_REFERENCES))]
    data, metrics = curves.toy2d_lines(toy)
    refs = curves.TOY_REFERENCES
    data = data.assign(color=data["flow"].map(lambda f: REFERENCE_COLOR if f in refs else style.color(f)))
    g = sns.FacetGrid(
        data,
        row="distribution",
        col="metric",
        row_order=sorted(models["distribution"].unique()),
        col_order=metrics,
        sharey=False,
        height=3.0,
        aspect=1.2,
        **style.hue(data, (*FLOW_LABELS, *refs)),
    )
    errorbar = ("ci", 95) if "seed" in toy and toy["seed"].nunique() > 1 else None
    g.map_dataframe(draw.aggregate, x="inference_steps", y="value", errorbar=errorbar)
    draw.steps_axis(g, sorted(models["inference_steps"].unique()))
    for (dist, metric), ax in g.axes_dict.items():
        ax.set_title(f"{dist} · {curves.TOY_METRICS.get(metric, metric)}")
        if metric != "straightness":
            ax.set_yscale("log")
    g.set_axis_labels(style.STEPS_LABEL, "distances: log scale")
    g.add_legend(title="flow")
    title = (
        "2D study: distance to the target distribution vs sampling steps (lower is better)\n"
        "samples from the same noise for every flow; grey lines: reference levels"
    )
    style.save(g, out, title + (f"\n{subtitle}" if subtitle else ""))
