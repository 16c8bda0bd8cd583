"""Drawing pieces the figure families share: lines with confidence bands, reference levels, step axes
and the labels of faceted grids."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def reference(ax, y: float, band, color, ls: str, text: str) -> None:
    """A horizontal line, with its CI band where known: a policy or level without inference steps."""
    ax.axhline(y, color=color, ls=ls, lw=1.6, label=text)
    if band is not None and np.isfinite(band).all():
        ax.axhspan(*band, color=color, alpha=0.12, lw=0)


def estimate(data: pd.DataFrame, x: str, color, label: str, ls: str) -> None:
    """One policy in one panel from summary-table rows (mean, 95 % CI): a line with its band along the
    steps, or a reference line and band across the panel."""
    ax = plt.gca()
    if ls != "-":
        row = data.iloc[0]
        reference(ax, row["mean"], (row["ci_low"], row["ci_high"]), color, ls, label)
        return
    data = data.sort_values(x)
    ax.plot(data[x], data["mean"], marker="o", color=color, label=label)
    ax.fill_between(data[x], data["ci_low"], data["ci_high"], color=color, alpha=0.2, lw=0)


def aggregate(data: pd.DataFrame, x: str, y: str, color, label: str, ls: str, errorbar=None) -> None:
    """One flow or reference level in one panel from raw rows: seaborn's mean line with its `errorbar`
    band along the steps, or the mean of a reference level as a horizontal line."""
    if ls != "-":
        reference(plt.gca(), data[y].mean(), None, color, ls, label)
        return
    sns.lineplot(data=data, x=x, y=y, color=color, label=label, marker="o", errorbar=errorbar, ax=plt.gca())


def method_lines(ax, data: pd.DataFrame, x: str, methods: list, palette: dict, seeds: int, **kw) -> None:
    """`value` against `x`, one line per `method` in `methods` order: the mean over seeds, with its 95 %
    bootstrap band where there are several."""
    sns.lineplot(
        data=data,
        x=x,
        y="value",
        hue="method",
        hue_order=methods,
        palette=palette,
        marker="o",
        errorbar=("ci", 95) if seeds > 1 else None,
        n_boot=1000,
        seed=0,
        ax=ax,
        **kw,
    )


def steps_axis(g: sns.FacetGrid, steps) -> None:
    """Inference steps on a log-2 axis, a tick at each of `steps`."""
    for ax in g.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()


def label_rows(g: sns.FacetGrid, xlabel: str, names: dict) -> None:
    """A panel only where there is data (a dataset without a metric gets no empty box in its row); each
    column titled above its top panel, each row's metric as the y label of its leftmost panel, the x
    label under the bottom panel of each column. A row of rates (success) spans [0, 1], so that a row
    of zeros reads as zero and not as noise around 1e-17."""
    g.set_titles(col_template="", row_template="")
    g.set_xlabels("")
    g.set_ylabels("")
    shown = np.array([[ax.has_data() for ax in row] for row in g.axes])
    for ax, visible in zip(g.axes.flat, shown.flat, strict=True):
        ax.set_visible(bool(visible))
    for i, row in enumerate(g.row_names or [""]):
        if row == "success":
            for ax in g.axes[i]:
                ax.set_ylim(-0.05, 1.05)
        if shown[i].any():
            ax = g.axes[i, shown[i].argmax()]
            ax.set_ylabel(names.get(row, row))
            ax.yaxis.label.set_visible(True)
            ax.tick_params(labelleft=True)
    for j, col in enumerate(g.col_names or [""]):
        if shown[:, j].any():
            g.axes[shown[:, j].argmax(), j].set_title(col)
            bottom = g.axes[len(shown) - 1 - shown[::-1, j].argmax(), j]
            bottom.set_xlabel(xlabel)
            bottom.xaxis.label.set_visible(True)
            bottom.tick_params(labelbottom=True)
