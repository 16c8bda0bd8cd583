"""The look every figure of a study shares: colours per flow and per critic-based method, axis labels per
metric, legend entries from `myreinflow.names`, the seaborn theme, and one `save`.

Colours are fixed per flow across every figure; a solid line is swept over the inference steps, dashed
and dotted ones are reference levels (baselines without steps to sweep, such as MLP BC or FQL's one-step
policy).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from myreinflow.analysis.curves import label
from myreinflow.names import CRITIC_METHODS, FLOW_LABELS
from myreinflow.utils import atomic_path

_CB = sns.color_palette("colorblind")
FLOW_COLORS = {"reflow": _CB[0], "meanflow": _CB[1], "rectified": _CB[2], "mlp": _CB[7]}
# each critic-based method's colour, in its figures and in the online one: FQL in the flows' colours,
# MeanFlow-QL and the QCs in others
METHOD_COLORS = dict(zip(CRITIC_METHODS, [_CB[0], _CB[1], _CB[2], _CB[3], _CB[4]], strict=True))
METRIC_LABELS = {
    "normalized_score": "normalized score",
    "final_distance": "final object–goal distance (m)\nlower is better",
    "success": "success rate",
    "return": "return",
    "latency_ms": "latency per action chunk (ms)",
}
STEPS_LABEL = "inference steps (NFE, log scale)"
# a solid line is swept over the inference steps; dashed and dotted ones are reference levels
POLICY_STYLES = {"flow": "-", "onestep": "--", "mlp": ":"}


def color(flow: str):
    """A flow's (or baseline's) colour; one colour for any other name."""
    return FLOW_COLORS.get(flow, _CB[4])


def theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def labelled(frame: pd.DataFrame, mlp: str = "MLP BC (reference)") -> pd.DataFrame:
    """Each row's legend entry (`label`), colour and line style, from its flow and policy."""
    names = frame["flow"].map(label)
    text = np.where(frame["policy"] == "onestep", "FQL one-step policy (from " + names + ")", names + " flow")
    return frame.assign(
        label=np.where(frame["flow"] == "mlp", mlp, text),
        color=frame["flow"].map(color),
        ls=frame["policy"].map(POLICY_STYLES).fillna("-"),
    )


def hue(data: pd.DataFrame, order: tuple[str, ...] = tuple(FLOW_LABELS)) -> dict:
    """FacetGrid's hue arguments from the `label`, `color` and `ls` columns: one level per legend entry,
    lines over the steps first, then reference levels, each in flow `order`. The line style reaches the
    drawing functions as their `ls` argument."""
    levels = data.drop_duplicates("label")
    rank = levels["flow"].map({f: i for i, f in enumerate(order)}).fillna(len(order))
    levels = levels.assign(rank=rank + len(order) * (levels["ls"] != "-")).sort_values("rank", kind="stable")
    return dict(
        hue="label",
        hue_order=list(levels["label"]),
        palette=dict(zip(levels["label"], levels["color"], strict=True)),
        hue_kws={"ls": list(levels["ls"])},
    )


def save(figure, out: str | Path, title: str | None = None, dpi: int = 130) -> None:
    """Writes a figure (or a seaborn grid's) to `out` as a PNG, with `title` above it, then closes it.
    Atomic: a temp file beside `out`, renamed onto it once written, with a plain file's permissions."""
    figure = getattr(figure, "figure", figure)
    if title is not None:
        figure.suptitle(title, y=1.0, va="bottom")  # above the grid; the tight bounding box keeps it
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
