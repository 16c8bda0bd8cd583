"""Figures of the 2D study, drawn from what the study saved (samples.npz arrays and the metric tables);
the metrics against steps are `analysis.figures.toy2d.plot_toy2d`, the pipeline's figure, for one run.

Drawn with matplotlib's object API (`Figure`), written by the study figures' shared `style.save`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from myreinflow.analysis.figures.style import save
from myreinflow.names import FLOW_LABELS

LIMIT = 2.75  # axes show [-2.75, 2.75]²
BINS = 80
DPI = 110


def _histogram(points: np.ndarray) -> np.ndarray:
    return np.histogram2d(points[:, 0], points[:, 1], bins=BINS, range=[[-LIMIT, LIMIT]] * 2)[0]


def _density(ax, points: np.ndarray, vmax: float) -> None:
    """2D histogram; the colour scale saturates at `vmax` (the target's 99th percentile bin) so that one
    dense spot does not hide the rest, and every panel shares the target's scale."""
    ax.imshow(
        _histogram(points).T, origin="lower", extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), cmap="magma",
        vmin=0, vmax=vmax, interpolation="nearest",
    )  # fmt: skip
    ax.set(xticks=[], yticks=[])


def plot_samples(
    arrays: dict, target: np.ndarray, steps, path: Path, title: str, metrics: pd.DataFrame | None = None
) -> None:
    """Grid of 2D histograms: rows = models, first column the target, then one column per NFE."""
    models = list(arrays)
    target_bins = _histogram(target)
    vmax = float(np.quantile(target_bins[target_bins > 0], 0.99))
    fig = Figure(figsize=(1.9 * (len(steps) + 1), 2.0 * len(models) + 0.4))
    axes = fig.subplots(len(models), len(steps) + 1, squeeze=False)
    for i, name in enumerate(models):
        _density(axes[i, 0], target, vmax)
        axes[i, 0].set_ylabel(FLOW_LABELS.get(name, name), fontsize=11)
        for j, k in enumerate(steps, start=1):
            _density(axes[i, j], arrays[name][f"nfe{k}"], vmax)
            if metrics is not None:
                row = metrics[
                    (metrics.flow == name) & (metrics.inference_steps == k) & (metrics.metric == "swd")
                ]
                if len(row):
                    axes[i, j].text(
                        0.03, 0.03, f"SWD {row.value.iloc[0]:.3f}", transform=axes[i, j].transAxes,
                        color="white", fontsize=8,
                    )  # fmt: skip
    axes[0, 0].set_title("target")
    for j, k in enumerate(steps, start=1):
        axes[0, j].set_title(f"{k} step{'s' if k > 1 else ''} (NFE {k})")
    fig.suptitle(f"Samples by number of function evaluations — {title}")
    save(fig, path, dpi=DPI)


def plot_trajectories(arrays: dict, target: np.ndarray, steps: int, path: Path, title: str) -> None:
    """Sampled paths from the same starting points, one panel per model, at `steps` NFE."""
    models = list(arrays)
    fig = Figure(figsize=(4.0 * len(models), 4.3))
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, name in zip(axes, models, strict=True):
        ax.scatter(target[:4000, 0], target[:4000, 1], s=1, color="0.8", rasterized=True, label="target")
        paths = arrays[name][f"path_nfe{steps}"]  # (K + 1, N_PATHS, 2), from noise to sample
        ax.plot(paths[:, :, 0], paths[:, :, 1], color="tab:blue", alpha=0.5, linewidth=0.8)
        ax.scatter(paths[0, :, 0], paths[0, :, 1], s=10, color="black", label="start (noise, t = 1)")
        ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=14, color="tab:red", marker="x", label="end (t = 0)")
        ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), aspect="equal", title=FLOW_LABELS.get(name, name))
    axes[0].legend(loc="lower left", fontsize=8, markerscale=1.5)
    fig.suptitle(f"Trajectories of {paths.shape[1]} samples at {steps} steps — {title}")
    save(fig, path, dpi=DPI)
