"""Seaborn figures of a study, each drawn from summary CSVs, one PNG each, by family: `steps` (return and
latency vs inference steps), `rl` (BC → FQL, learning curves, ReFlow vs MeanFlow in RL), `online` and
`toy2d`; `style` holds what they share (colours, labels, `save`), `analysis.curves` the data they draw.

`PLOTS` maps each figure's file stem (`names.FIGURES`: results/figures/{stem}.png, `myreinflow summarize
figure STEM CSV...`) to its plot function, which takes the frames of those CSVs and the output path.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from myreinflow.analysis.figures.online import plot_online  # noqa: E402
from myreinflow.analysis.figures.rl import plot_curves, plot_fql, plot_rl  # noqa: E402
from myreinflow.analysis.figures.steps import plot_latency, plot_return  # noqa: E402
from myreinflow.analysis.figures.toy2d import plot_toy2d  # noqa: E402

PLOTS = {
    "return_vs_steps": plot_return,
    "latency_vs_steps": plot_latency,
    "learning_curves": plot_curves,
    "bc_to_fql": plot_fql,
    "reflow_vs_meanflow_rl": plot_rl,
    "online": plot_online,
    "toy2d_metrics": plot_toy2d,
}
